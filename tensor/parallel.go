package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

var threads atomic.Int32

func init() { threads.Store(int32(runtime.GOMAXPROCS(0))) }

// SetThreads sets how many goroutines kernels use (≥1). It returns the old
// value. Results do not depend on it (see the package comment): only the
// speed does.
func SetThreads(n int) int {
	if n < 1 {
		n = 1
	}
	old := threads.Swap(int32(n))
	setBLASThreads(n)
	return int(old)
}

// Threads returns the number of goroutines kernels use.
func Threads() int { return int(threads.Load()) }

// ParallelFor splits [0,n) into at most Threads() contiguous chunks and runs
// fn(lo, hi) on each, concurrently; it returns when all are done. Work below
// grain items per chunk runs inline.
//
// The chunk boundaries depend on Threads(), so fn must be elementwise: what
// it computes for an index may not depend on lo or hi (no partial sums over
// the chunk). Reductions use fixed slots instead (Slots, SlotRange).
func ParallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	p := Threads()
	if c := (n + grain - 1) / grain; c < p {
		p = c
	}
	if p <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + p - 1) / p
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}

// ParallelEach runs fn(worker, i) for every i in [0,n) on Workers(n)
// goroutines that take indices dynamically (good balance when items differ
// in cost); it is ParallelEachN(n, Workers(n), fn).
func ParallelEach(n int, fn func(worker, i int)) {
	ParallelEachN(n, Workers(n), fn)
}

// ParallelEachN runs fn(worker, i) for every i in [0,n) on at most workers
// goroutines (≥ 1) that take indices dynamically. worker is in
// [0, min(workers, n)) and identifies the goroutine, so fn may use
// per-worker scratch buffers without locks; a caller that sized its scratch
// with Workers passes that count here, so that a concurrent SetThreads
// cannot hand out a worker index it has no scratch for.
//
// Which worker runs which item depends on scheduling: fn must compute the
// same result for item i whichever worker runs it (scratch is overwritten,
// never carried from one item to the next), and must not sum into
// per-worker accumulators. Deterministic reductions give each fixed slot of
// items its own accumulator (Slots, SlotRange, SlotBuffers).
func ParallelEachN(n, workers int, fn func(worker, i int)) {
	p := max(1, min(n, workers))
	if p <= 1 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < p; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(w, i)
			}
		}(w)
	}
	wg.Wait()
}

// Workers returns how many goroutines ParallelEach uses for n items.
func Workers(n int) int {
	return max(1, min(n, Threads()))
}
