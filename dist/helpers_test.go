package dist

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// input32 returns rank's deterministic input of n float32 values with
// magnitudes from 1e-3 to 1e3, so that the summation order shows in the
// low bits.
func input32(seed uint64, rank, n int) []float32 {
	rng := rand.New(rand.NewPCG(seed, uint64(rank)))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(7)-3)))
	}
	return x
}

func input64(seed uint64, rank, n int) []float64 {
	rng := rand.New(rand.NewPCG(seed, uint64(rank)+1000))
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(13)-6))
	}
	return x
}

func inputBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// runGroup runs f(rank, comms[rank]) on one goroutine per rank and returns
// their errors; it fails the test if they do not all return within a
// minute (a deadlock).
func runGroup(t *testing.T, comms []Comm, f func(c Comm) error) []error {
	t.Helper()
	errs := make([]error, len(comms))
	done := make(chan int, len(comms))
	for r, c := range comms {
		go func() {
			defer func() { done <- r }()
			errs[r] = f(c)
		}()
	}
	timeout := time.After(time.Minute)
	for range comms {
		select {
		case <-done:
		case <-timeout:
			t.Fatalf("group of %d: not every rank returned within a minute (deadlock)", len(comms))
		}
	}
	return errs
}

// caseSizes are the lengths every AllReduceSum test covers for size ranks.
func caseSizes(size int) []int {
	var ns []int
	// 2<<16+1: on 2 ranks, float32 chunks of 65,536 and 65,537 elements, so
	// the ranks' chunks have 1 and 2 reduce-scatter segments; the last: a
	// few segments per chunk on any rank count, chunks of unequal lengths.
	for _, n := range []int{0, 1, size - 1, size, 1000, 1<<16 + 3, 2<<16 + 1, 5*size*(reduceSegment/4)/2 + size/2 + 1} {
		dup := false
		for _, m := range ns {
			dup = dup || m == n
		}
		if !dup {
			ns = append(ns, n)
		}
	}
	return ns
}

// runCases runs a fixed sequence of collectives on deterministic inputs
// and returns, for each case, the SHA-256 of the result's bytes or the
// error text. The MPI workers and the Local reference run it alike.
func runCases(c Comm) (map[string]string, error) {
	size, rank := c.Size(), c.Rank()
	res := make(map[string]string)
	for _, n := range caseSizes(size) {
		x := input32(1, rank, n)
		if err := c.AllReduceSum(x); err != nil {
			return nil, err
		}
		res[fmt.Sprintf("f32/%d", n)] = digest(asBytes(x))
		y := input64(2, rank, n)
		if err := c.AllReduceSum64(y); err != nil {
			return nil, err
		}
		res[fmt.Sprintf("f64/%d", n)] = digest(asBytes(y))
	}
	for root := range size {
		for _, n := range []int{0, 5, 3<<20 + 1} {
			b := make([]byte, n)
			if rank == root {
				b = inputBytes(uint64(root), n)
			}
			if err := c.Broadcast(b, root); err != nil {
				return nil, err
			}
			res[fmt.Sprintf("bcast/%d/%d", root, n)] = digest(b)
		}
	}
	res["barrier"] = errText(c.Barrier())
	same := sha256.Sum256([]byte("same"))
	res["agree/equal"] = errText(Agree(c, same))
	d := same
	if rank == 1 {
		d[0]++
	}
	res["agree/differ"] = errText(Agree(c, d))
	n := 10
	if rank == size-1 {
		n = 11
	}
	res["mismatch"] = errText(c.AllReduceSum(make([]float32, n)))
	return res, nil
}
