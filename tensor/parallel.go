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
