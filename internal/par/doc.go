// Package par is dptrain's one parallel runtime: one thread count for the
// whole process (SetThreads), and the two ways its kernels split work.
//
//   - For and Each/EachN run closures on goroutines started for the call.
//     Kernels that may nest (a layer's per-example loop calling GEMM,
//     which is itself parallel) use them: a call never waits for work that
//     no goroutine has taken, so nesting cannot deadlock.
//   - Run hands a Task out to a pool of goroutines that lives for the life
//     of the process, without allocating: the elementwise hot loops of
//     noise generation and the optimizers, which call nothing parallel.
//     A Task must not call par itself (its parts wait in the pool's queue
//     behind the parts that wait for them). Run itself may be called from
//     any goroutine, inside a part of For or Each too, and by several at
//     once: the pool's goroutines only ever run Tasks, which never wait.
//
// # Determinism
//
// How work is split never changes a result. For and Run cut [0, n) into
// at most Threads() contiguous parts of at least grain items, so part
// boundaries depend on the thread count: what a part computes for an
// index must not depend on where the part starts (elementwise work, or
// randomness keyed by a fixed chunk index, never by the part). Each and
// EachN hand items to goroutines in an order that depends on scheduling:
// an item's result must not depend on which worker computed it, and
// reductions accumulate into slots fixed by the item, summed in a fixed
// order afterwards (tensor.Slots). The tests of tensor, nn and dpsgd check
// bit-identical results at 1 to 8 threads.
//
// SetThreads may be called at any time; a call in progress keeps the
// count it started with. Packages with a thread setting of their own (the
// BLAS library) follow it through OnSetThreads.
package par
