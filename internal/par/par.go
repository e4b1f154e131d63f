package par

import (
	"runtime"
	"sync"
	"sync/atomic"
)

var threads atomic.Int32

var hooks struct {
	mu  sync.Mutex
	fns []func(int)
}

func init() { threads.Store(int32(runtime.GOMAXPROCS(0))) }

// SetThreads sets how many goroutines (≥ 1; smaller values mean 1) the
// process's parallel loops use, the caller's included, and returns the old
// value. Results do not depend on it, only the speed does.
func SetThreads(n int) int {
	n = max(n, 1)
	old := int(threads.Swap(int32(n)))
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	for _, fn := range hooks.fns {
		fn(n)
	}
	return old
}

// Threads returns how many goroutines the parallel loops use.
func Threads() int { return int(threads.Load()) }

// OnSetThreads registers fn to be called with the new count on every
// SetThreads (a library with its own threads, such as OpenBLAS).
func OnSetThreads(fn func(n int)) {
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	hooks.fns = append(hooks.fns, fn)
}

// parts is how many parts For and Run cut n items into.
func parts(n, grain int) int {
	grain = max(grain, 1)
	return min(Threads(), (n+grain-1)/grain)
}

// For splits [0, n) into at most Threads() contiguous parts of at least
// grain items (except the last) and runs fn(lo, hi) on each, concurrently;
// it returns when all are done. The first part runs on the calling
// goroutine. fn must be elementwise (see the package documentation).
func For(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	p := parts(n, grain)
	if p <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + p - 1) / p
	for lo := chunk; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, min(lo+chunk, n))
	}
	fn(0, chunk)
	wg.Wait()
}

// Each runs fn(worker, i) for every i in [0, n) on Workers(n) goroutines
// that take items dynamically; it is EachN(n, Workers(n), fn).
func Each(n int, fn func(worker, i int)) { EachN(n, Workers(n), fn) }

// EachN runs fn(worker, i) for every i in [0, n) on at most workers
// goroutines (≥ 1) that take items dynamically (good balance when items
// differ in cost). worker is in [0, min(workers, n)) and identifies the
// goroutine, so fn may use per-worker scratch without locks; a caller
// that sized its scratch with Workers passes that count, so that a
// concurrent SetThreads cannot hand out a worker it has no scratch for.
// fn's result for item i must not depend on the worker (see the package
// documentation).
func EachN(n, workers int, fn func(worker, i int)) {
	p := max(1, min(n, workers))
	if p <= 1 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	work := func(w int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(w, i)
		}
	}
	for w := 1; w < p; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			work(w)
		}(w)
	}
	work(0)
	wg.Wait()
}

// Workers returns how many goroutines Each uses for n items.
func Workers(n int) int { return max(1, min(n, Threads())) }
