package dist

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// fixedOrder is the documented summation order: chunk c (the elements
// Partition(n, size, c)) is summed as ((x_c + x_{c+1}) + …) + x_{c−1}.
func fixedOrder[T float32 | float64](in [][]T) []T {
	size, n := len(in), len(in[0])
	out := make([]T, n)
	for c := range size {
		lo, hi := Partition(n, size, c)
		for i := lo; i < hi; i++ {
			s := in[c][i]
			for k := 1; k < size; k++ {
				s = s + in[(c+k)%size][i]
			}
			out[i] = s
		}
	}
	return out
}

// allReduceLocal runs AllReduceSum (or AllReduceSum64) on a fresh Local
// group and returns every rank's result.
func allReduceLocal[T float32 | float64](t *testing.T, in [][]T) [][]T {
	t.Helper()
	out := make([][]T, len(in))
	for r := range in {
		out[r] = slices.Clone(in[r])
	}
	errs := runGroup(t, Local(len(in)), func(c Comm) error {
		switch x := any(out[c.Rank()]).(type) {
		case []float32:
			return c.AllReduceSum(x)
		case []float64:
			return c.AllReduceSum64(x)
		}
		panic("unreachable")
	})
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	return out
}

func TestAllReduceSum(t *testing.T) {
	orderShows := 0 // elements where the fixed order differs from rank order 0, 1, …
	for _, size := range []int{1, 2, 3, 4, 7} {
		for _, n := range caseSizes(size) {
			t.Run(fmt.Sprintf("R=%d/n=%d", size, n), func(t *testing.T) {
				in := make([][]float32, size)
				for r := range in {
					in[r] = input32(uint64(size*1000+n), r, n)
				}
				out := allReduceLocal(t, in)
				again := allReduceLocal(t, in)
				want := fixedOrder(in)
				for r := range size {
					if !slices.Equal(asBytes(out[r]), asBytes(out[0])) {
						t.Fatalf("rank %d's result differs from rank 0's", r)
					}
					if !slices.Equal(asBytes(again[r]), asBytes(out[0])) {
						t.Fatalf("rank %d: a second run gave other bits", r)
					}
				}
				for i := range n {
					var sum, abs float64
					naive := float32(0)
					for r := range size {
						sum += float64(in[r][i])
						abs += math.Abs(float64(in[r][i]))
						naive += in[r][i]
					}
					got := out[0][i]
					if math.Float32bits(got) != math.Float32bits(want[i]) {
						t.Fatalf("element %d: %v (%#08x), want %v (%#08x) from the fixed order", i, got, math.Float32bits(got), want[i], math.Float32bits(want[i]))
					}
					if tol := float64(size) * 0x1p-24 * abs; math.Abs(float64(got)-sum) > tol {
						t.Fatalf("element %d: %v, float64 sum %v (tolerance %g)", i, got, sum, tol)
					}
					if naive != want[i] {
						orderShows++
					}
				}
			})
		}
	}
	// The inputs are such that a wrong order would be caught.
	if orderShows == 0 {
		t.Error("no element's sum depends on the order: the test cannot tell orders apart")
	}
}

func TestAllReduceSum64(t *testing.T) {
	for _, size := range []int{1, 2, 3, 7} {
		for _, n := range caseSizes(size) {
			in := make([][]float64, size)
			for r := range in {
				in[r] = input64(uint64(n), r, n)
			}
			out := allReduceLocal(t, in)
			want := fixedOrder(in)
			for r := range size {
				if !slices.Equal(asBytes(out[r]), asBytes(want)) {
					t.Fatalf("R=%d n=%d rank %d: result is not the fixed-order sum bit for bit", size, n, r)
				}
			}
		}
	}
}

func TestBroadcast(t *testing.T) {
	for _, size := range []int{1, 2, 3, 4, 7} {
		for _, n := range []int{0, 1, 1000, 5<<19 + 3} {
			if size == 7 && n > 1000 {
				continue // keep the test small
			}
			for root := range size {
				want := inputBytes(uint64(n+root), n)
				bufs := make([][]byte, size)
				for r := range bufs {
					bufs[r] = make([]byte, n)
					if r == root {
						copy(bufs[r], want)
					}
				}
				errs := runGroup(t, Local(size), func(c Comm) error { return c.Broadcast(bufs[c.Rank()], root) })
				for r := range size {
					if errs[r] != nil {
						t.Fatalf("R=%d n=%d root %d: rank %d: %v", size, n, root, r, errs[r])
					}
					if !slices.Equal(bufs[r], want) {
						t.Fatalf("R=%d n=%d root %d: rank %d did not receive the root's bytes", size, n, root, r)
					}
				}
			}
		}
	}
}

func TestBarrier(t *testing.T) {
	const size = 5
	var arrived atomic.Int32
	errs := runGroup(t, Local(size), func(c Comm) error {
		arrived.Add(1)
		if err := c.Barrier(); err != nil {
			return err
		}
		if n := arrived.Load(); n != size {
			return fmt.Errorf("left the barrier with %d of %d ranks arrived", n, size)
		}
		return nil
	})
	for r, err := range errs {
		if err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}

// sameError checks that every rank returned an error with the same text,
// wrapping target, and returns the text.
func sameError(t *testing.T, errs []error, target error) string {
	t.Helper()
	for r, err := range errs {
		if err == nil {
			t.Fatalf("rank %d: no error", r)
		}
		if !errors.Is(err, target) {
			t.Fatalf("rank %d: %v does not wrap %v", r, err, target)
		}
		if err.Error() != errs[0].Error() {
			t.Fatalf("rank %d: %q, rank 0: %q", r, err, errs[0])
		}
	}
	return errs[0].Error()
}

func TestCallMismatch(t *testing.T) {
	const size = 3
	tests := []struct {
		name string
		call func(c Comm) error // rank 2's call; the others call AllReduceSum of 10
		want string
	}{
		{"length", func(c Comm) error { return c.AllReduceSum(make([]float32, 11)) },
			"dist: collective calls differ across ranks (group of 3): rank 0: AllReduceSum of 10 float32; rank 2: AllReduceSum of 11 float32"},
		{"empty", func(c Comm) error { return c.AllReduceSum(nil) },
			"rank 2: AllReduceSum of 0 float32"},
		{"type", func(c Comm) error { return c.AllReduceSum64(make([]float64, 10)) },
			"rank 2: AllReduceSum64 of 10 float64"},
		{"barrier", func(c Comm) error { return c.Barrier() }, "rank 2: Barrier"},
		{"broadcast", func(c Comm) error { return c.Broadcast(make([]byte, 40), 1) },
			"rank 2: Broadcast of 40 bytes from root 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			comms := Local(size)
			errs := runGroup(t, comms, func(c Comm) error {
				if c.Rank() == 2 {
					return tt.call(c)
				}
				return c.AllReduceSum(make([]float32, 10))
			})
			if got := sameError(t, errs, ErrMismatch); !strings.Contains(got, tt.want) {
				t.Fatalf("error %q, want it to contain %q", got, tt.want)
			}
			var me *MismatchError
			if !errors.As(errs[0], &me) || !slices.Equal(me.Ranks, []int{2}) || me.Size != size {
				t.Fatalf("error %#v, want a *MismatchError naming rank 2 of 3", errs[0])
			}
			// The group is still usable.
			errs = runGroup(t, comms, func(c Comm) error {
				x := []float32{float32(c.Rank())}
				if err := c.AllReduceSum(x); err != nil {
					return err
				}
				if x[0] != 3 {
					return fmt.Errorf("sum %v, want 3", x[0])
				}
				return nil
			})
			for r, err := range errs {
				if err != nil {
					t.Fatalf("after the mismatch: rank %d: %v", r, err)
				}
			}
		})
	}
	// Different roots of Broadcast.
	errs := runGroup(t, Local(2), func(c Comm) error { return c.Broadcast(make([]byte, 4), c.Rank()) })
	if got := sameError(t, errs, ErrMismatch); !strings.Contains(got, "rank 0: Broadcast of 4 bytes from root 0; rank 1: Broadcast of 4 bytes from root 1") {
		t.Fatalf("error %q", got)
	}
}

func TestAgree(t *testing.T) {
	base := sha256.Sum256([]byte("weights"))
	tests := []struct {
		size   int
		differ []int
		want   string
	}{
		{1, nil, ""},
		{2, nil, ""},
		{4, nil, ""},
		{2, []int{1}, "dist: digests differ across ranks: rank 1 of 2 does not match rank 0"},
		{3, []int{2}, "dist: digests differ across ranks: rank 2 of 3 does not match rank 0"},
		{4, []int{1, 3}, "dist: digests differ across ranks: ranks 1, 3 of 4 do not match rank 0"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("R=%d/differ=%v", tt.size, tt.differ), func(t *testing.T) {
			errs := runGroup(t, Local(tt.size), func(c Comm) error {
				d := base
				if slices.Contains(tt.differ, c.Rank()) {
					d[31] ^= byte(c.Rank())
				}
				return Agree(c, d)
			})
			if tt.want == "" {
				for r, err := range errs {
					if err != nil {
						t.Fatalf("rank %d: %v", r, err)
					}
				}
				return
			}
			if got := sameError(t, errs, ErrMismatch); got != tt.want {
				t.Fatalf("error %q, want %q", got, tt.want)
			}
			var me *MismatchError
			if !errors.As(errs[0], &me) || !slices.Equal(me.Ranks, tt.differ) {
				t.Fatalf("error %#v, want Ranks %v", errs[0], tt.differ)
			}
		})
	}
}

func TestLocalAbort(t *testing.T) {
	errs := runGroup(t, Local(3), func(c Comm) error {
		if c.Rank() == 1 {
			c.Abort(7)
			return nil
		}
		return c.AllReduceSum(make([]float32, 100))
	})
	for _, r := range []int{0, 2} {
		var ae *AbortError
		if !errors.As(errs[r], &ae) || ae.Rank != 1 || ae.Code != 7 || ae.Size != 3 {
			t.Fatalf("rank %d: %v, want an *AbortError of rank 1, code 7", r, errs[r])
		}
	}
	if want := "dist: rank 1 of 3 called Abort(7)"; errs[0].Error() != want {
		t.Fatalf("error %q, want %q", errs[0], want)
	}
}

func TestLocalLinkLengthMismatch(t *testing.T) {
	// Unreachable through the API (the call headers are checked first),
	// but the link must neither hang nor read past the buffers.
	g := Local(2)
	a, b := g[0].(*localComm), g[1].(*localComm)
	errs := runGroup(t, g, func(c Comm) error {
		l := c.(*localComm).e.link
		if c == a {
			return l.sendRecv(1, make([]byte, 8), 1, make([]byte, 8))
		}
		return l.sendRecv(0, make([]byte, 8), 0, make([]byte, 4))
	})
	if err := errs[1]; err == nil || !strings.Contains(err.Error(), "received 8 bytes from rank 0, expected 4") {
		t.Fatalf("rank 1: %v", err)
	}
	// Rank 0's transfer may have completed; the group has failed anyway.
	for _, c := range []Comm{a, b} {
		if err := c.AllReduceSum(nil); err == nil {
			t.Fatalf("rank %d: the failed group accepted another call", c.Rank())
		}
	}
}

func TestSingle(t *testing.T) {
	c := Single()
	if c.Rank() != 0 || c.Size() != 1 {
		t.Fatalf("rank %d size %d", c.Rank(), c.Size())
	}
	x, y, b := []float32{1, 2.5}, []float64{-3}, []byte("abc")
	if err := c.AllReduceSum(x); err != nil || !slices.Equal(x, []float32{1, 2.5}) {
		t.Fatalf("AllReduceSum: %v %v", x, err)
	}
	if err := c.AllReduceSum64(y); err != nil || y[0] != -3 {
		t.Fatalf("AllReduceSum64: %v %v", y, err)
	}
	if err := c.Broadcast(b, 0); err != nil || string(b) != "abc" {
		t.Fatalf("Broadcast: %q %v", b, err)
	}
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
	if err := Agree(c, [32]byte{1}); err != nil {
		t.Fatal(err)
	}
	if c.Close() != nil || c.Close() != nil {
		t.Fatal("Close failed")
	}
}

func mustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if _, ok := r.(*UsageError); !ok {
			t.Errorf("%s: panic value %v (%T), want a *UsageError", name, r, r)
		}
	}()
	f()
}

func TestUsagePanics(t *testing.T) {
	mustPanic(t, "Local(0)", func() { Local(0) })
	mustPanic(t, "Single root 1", func() { Single().Broadcast(nil, 1) })
	mustPanic(t, "root -1", func() { Local(2)[0].Broadcast(nil, -1) })
	mustPanic(t, "root 2", func() { Local(2)[1].Broadcast(nil, 2) })
	closed := Local(1)[0]
	closed.Close()
	mustPanic(t, "after Close", func() { closed.Barrier() })
	s := Single()
	s.Close()
	mustPanic(t, "Single after Close", func() { s.AllReduceSum(nil) })

	// A second call while the first is blocked waiting for rank 1.
	g := Local(2)
	done := make(chan error)
	go func() { done <- g[0].Barrier() }()
	for !g[0].(*localComm).busy.Load() {
		// wait until the first call holds the Comm
	}
	mustPanic(t, "concurrent use", func() { g[0].Barrier() })
	if err := g[1].Barrier(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPartition(t *testing.T) {
	tests := []struct {
		n, size int
		want    [][2]int
	}{
		{0, 1, [][2]int{{0, 0}}},
		{0, 3, [][2]int{{0, 0}, {0, 0}, {0, 0}}},
		{2, 3, [][2]int{{0, 0}, {0, 1}, {1, 2}}},
		{10, 3, [][2]int{{0, 3}, {3, 6}, {6, 10}}},
		{10, 4, [][2]int{{0, 2}, {2, 5}, {5, 7}, {7, 10}}},
		{7, 7, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}}},
		{math.MaxInt, 2, [][2]int{{0, math.MaxInt / 2}, {math.MaxInt / 2, math.MaxInt}}},
	}
	for _, tt := range tests {
		for r, w := range tt.want {
			if lo, hi := Partition(tt.n, tt.size, r); lo != w[0] || hi != w[1] {
				t.Errorf("Partition(%d, %d, %d) = [%d, %d), want [%d, %d)", tt.n, tt.size, r, lo, hi, w[0], w[1])
			}
		}
	}
	for n := range 40 {
		for size := 1; size <= 9; size++ {
			next := 0
			for r := range size {
				lo, hi := Partition(n, size, r)
				if lo != next || hi-lo < n/size || hi-lo > (n+size-1)/size {
					t.Fatalf("Partition(%d, %d, %d) = [%d, %d) after %d", n, size, r, lo, hi, next)
				}
				next = hi
			}
			if next != n {
				t.Fatalf("Partition(%d, %d, ·) covers [0, %d)", n, size, next)
			}
		}
	}
	for _, bad := range [][3]int{{-1, 1, 0}, {5, 0, 0}, {5, -2, 0}, {5, 2, 2}, {5, 2, -1}} {
		mustPanic(t, fmt.Sprint("Partition", bad), func() { Partition(bad[0], bad[1], bad[2]) })
	}
}

func TestLocalMatchesCases(t *testing.T) {
	// runCases (the MPI workers' sequence) on Local groups: every rank
	// reaches the same results.
	for _, size := range []int{2, 3} {
		res := make([]map[string]string, size)
		errs := runGroup(t, Local(size), func(c Comm) (err error) {
			res[c.Rank()], err = runCases(c)
			return err
		})
		for r := range size {
			if errs[r] != nil {
				t.Fatalf("R=%d rank %d: %v", size, r, errs[r])
			}
			for k, v := range res[0] {
				if res[r][k] != v {
					t.Fatalf("R=%d case %s: rank %d %q, rank 0 %q", size, k, r, res[r][k], v)
				}
			}
		}
		if !strings.Contains(res[0]["agree/differ"], "rank 1 of") || !strings.Contains(res[0]["mismatch"], "AllReduceSum of 11 float32") {
			t.Fatalf("R=%d: %q, %q", size, res[0]["agree/differ"], res[0]["mismatch"])
		}
	}
}
