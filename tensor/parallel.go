package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

var threads atomic.Int32

func init() { threads.Store(int32(runtime.GOMAXPROCS(0))) }

// SetThreads sets how many goroutines kernels use (≥1). It returns the old value.
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

// ParallelEach runs fn(worker, i) for every i in [0,n) on up to Threads()
// goroutines that take indices dynamically (good balance when items differ
// in cost). worker is in [0, Workers(n)) and identifies the goroutine, so fn
// may use per-worker scratch buffers without locks.
func ParallelEach(n int, fn func(worker, i int)) {
	p := Workers(n)
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
