package par

import (
	"runtime"
	"sync"
)

// Task is work Run splits into parts: Run(lo, hi, w) processes items
// [lo, hi) with the scratch of the goroutine running it. It must not call
// par (see the package documentation).
type Task interface {
	Run(lo, hi int, w *Worker)
}

// Worker is one goroutine's scratch: the pool's goroutines each own one
// for their lifetime, and a caller of Run passes its own for the part it
// runs itself. Packages keep what they reuse across calls in its slots
// (Slot), so that hot loops allocate nothing after their first call.
type Worker struct {
	wg    sync.WaitGroup // Run's wait when this worker is the caller's
	slots []any
}

// SlotKey names one package's slot in every Worker (NewSlotKey).
type SlotKey int

var slotKeys struct {
	mu sync.Mutex
	n  int
}

// NewSlotKey returns a new key for Worker.Slot; call it once, at package
// initialisation.
func NewSlotKey() SlotKey {
	slotKeys.mu.Lock()
	defer slotKeys.mu.Unlock()
	slotKeys.n++
	return SlotKey(slotKeys.n - 1)
}

// Slot returns the value kept under k in w, creating it with create on
// first use. Only the goroutine that owns w may call it.
func (w *Worker) Slot(k SlotKey, create func() any) any {
	if int(k) >= len(w.slots) {
		w.slots = append(w.slots, make([]any, int(k)+1-len(w.slots))...)
	}
	if w.slots[k] == nil {
		w.slots[k] = create()
	}
	return w.slots[k]
}

type job struct {
	t      Task
	lo, hi int
	wg     *sync.WaitGroup
}

var pool struct {
	once sync.Once
	jobs chan job
}

func startPool() {
	n := max(runtime.NumCPU(), runtime.GOMAXPROCS(0))
	pool.jobs = make(chan job, 4*n)
	for range n {
		go func() {
			w := new(Worker)
			for j := range pool.jobs {
				j.t.Run(j.lo, j.hi, w)
				j.wg.Done()
			}
		}()
	}
}

// Run runs t on contiguous parts of [0, n), at most Threads() of them and
// none under grain items (except the last), on the process's pool, and
// returns when all are done. The first part runs on the calling goroutine
// with local as its Worker. It allocates nothing: parts are plain values
// on a channel.
func Run(n, grain int, t Task, local *Worker) {
	if n <= 0 {
		return
	}
	p := parts(n, grain)
	if p <= 1 {
		t.Run(0, n, local)
		return
	}
	pool.once.Do(startPool)
	part := (n + p - 1) / p
	for lo := part; lo < n; lo += part {
		local.wg.Add(1)
		pool.jobs <- job{t: t, lo: lo, hi: min(lo+part, n), wg: &local.wg}
	}
	t.Run(0, part, local)
	local.wg.Wait()
}
