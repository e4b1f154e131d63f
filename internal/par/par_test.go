package par

import (
	"math"
	"sync/atomic"
	"testing"
)

func withThreads(t *testing.T, n int) {
	old := SetThreads(n)
	t.Cleanup(func() { SetThreads(old) })
}

// TestForCoversEachIndexOnce at several thread counts and grains, with
// parts of at least grain items (but the last).
func TestForCoversEachIndexOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		withThreads(t, threads)
		for _, tc := range []struct{ n, grain int }{{0, 1}, {1, 1}, {7, 1}, {100, 7}, {1000, 1}, {5, 100}} {
			hits := make([]atomic.Int32, tc.n)
			var parts atomic.Int32
			For(tc.n, tc.grain, func(lo, hi int) {
				parts.Add(1)
				if hi-lo < tc.grain && hi != tc.n {
					t.Errorf("n=%d grain=%d: part [%d,%d) below the grain", tc.n, tc.grain, lo, hi)
				}
				for i := lo; i < hi; i++ {
					hits[i].Add(1)
				}
			})
			for i := range hits {
				if hits[i].Load() != 1 {
					t.Fatalf("threads %d n=%d: index %d run %d times", threads, tc.n, i, hits[i].Load())
				}
			}
			if int(parts.Load()) > max(threads, 1) {
				t.Errorf("threads %d n=%d: %d parts", threads, tc.n, parts.Load())
			}
		}
	}
}

// TestEachNWorkersAndNesting: every item once, worker ids in range, and a
// parallel call inside an item (GEMM inside a layer's per-example loop)
// completes.
func TestEachNWorkersAndNesting(t *testing.T) {
	withThreads(t, 3)
	const n = 50
	hits := make([]atomic.Int32, n)
	EachN(n, Workers(n), func(w, i int) {
		if w < 0 || w >= Workers(n) {
			t.Errorf("worker %d out of range", w)
		}
		var inner atomic.Int32
		For(64, 1, func(lo, hi int) { inner.Add(int32(hi - lo)) })
		if inner.Load() != 64 {
			t.Errorf("nested For covered %d of 64", inner.Load())
		}
		hits[i].Add(1)
	})
	for i := range hits {
		if hits[i].Load() != 1 {
			t.Fatalf("item %d run %d times", i, hits[i].Load())
		}
	}
}

type squares struct{ out []int }

func (s *squares) Run(lo, hi int, w *Worker) {
	buf := w.Slot(testSlot, func() any { return new([8]int) }).(*[8]int)
	for i := lo; i < hi; i++ {
		buf[i%8] = i
		s.out[i] = buf[i%8] * i
	}
}

var testSlot = NewSlotKey()

// TestRunPoolSameAtAnyThreadCountWithoutAllocating.
func TestRunPoolSameAtAnyThreadCountWithoutAllocating(t *testing.T) {
	const n = 10_000
	for _, threads := range []int{1, 2, 3, 8} {
		withThreads(t, threads)
		s := &squares{out: make([]int, n)}
		var local Worker
		Run(n, 16, s, &local)
		for i, v := range s.out {
			if v != i*i {
				t.Fatalf("threads %d: out[%d] = %d", threads, i, v)
			}
		}
		if a := testing.AllocsPerRun(10, func() { Run(n, 16, s, &local) }); a != 0 {
			t.Errorf("threads %d: Run allocated %v times per call", threads, a)
		}
	}
}

func TestSetThreadsHooks(t *testing.T) {
	var got atomic.Int32
	OnSetThreads(func(n int) { got.Store(int32(n)) })
	old := SetThreads(5)
	defer SetThreads(old)
	if got.Load() != 5 || Threads() != 5 {
		t.Fatalf("hook saw %d, Threads %d; want 5", got.Load(), Threads())
	}
	SetThreads(-3)
	if Threads() != 1 {
		t.Fatalf("SetThreads(-3): Threads %d, want 1", Threads())
	}
}

// TestSameResultAtAnyThreadCount: the three patterns as the kernels use
// them give bit-identical float results at 1, 2, 3 and 8 threads: For
// elementwise, Each into per-item slots summed in a fixed order
// afterwards, and Run elementwise. Nothing here depends on timing.
func TestSameResultAtAnyThreadCount(t *testing.T) {
	const n = 1000
	x := make([]float64, n)
	for i := range x {
		x[i] = 1 / float64(i+3)
	}
	compute := func(threads int) (elem []float64, sum float64, run []int) {
		withThreads(t, threads)
		elem = make([]float64, n)
		For(n, 10, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				elem[i] = x[i]*x[i] + 0.1
			}
		})
		slots := make([]float64, 37) // item i adds into slot i%37
		EachN(len(slots), Workers(len(slots)), func(_, s int) {
			for i := s; i < n; i += len(slots) {
				slots[s] += elem[i] * x[i]
			}
		})
		for _, v := range slots {
			sum += v
		}
		sq := &squares{out: make([]int, n)}
		var local Worker
		Run(n, 8, sq, &local)
		return elem, sum, sq.out
	}
	refElem, refSum, refRun := compute(1)
	for _, threads := range []int{2, 3, 8} {
		elem, sum, run := compute(threads)
		for i := range elem {
			if math.Float64bits(elem[i]) != math.Float64bits(refElem[i]) {
				t.Fatalf("threads %d: For element %d differs", threads, i)
			}
		}
		if math.Float64bits(sum) != math.Float64bits(refSum) {
			t.Errorf("threads %d: slot reduction %v, want %v", threads, sum, refSum)
		}
		for i := range run {
			if run[i] != refRun[i] {
				t.Fatalf("threads %d: Run element %d differs", threads, i)
			}
		}
	}
}

// TestRunNestedInEach: Run called from inside Each's items, several at
// once, completes with every part done (the pool never waits on them).
func TestRunNestedInEach(t *testing.T) {
	withThreads(t, 4)
	const items, n = 8, 4096
	outs := make([]*squares, items)
	Each(items, func(_, i int) {
		s := &squares{out: make([]int, n)}
		var local Worker
		Run(n, 16, s, &local)
		outs[i] = s
	})
	for k, s := range outs {
		for i, v := range s.out {
			if v != i*i {
				t.Fatalf("item %d: out[%d] = %d", k, i, v)
			}
		}
	}
}
