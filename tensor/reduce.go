package tensor

import (
	"sync"

	"dptrain/internal/par"
)

// Deterministic parallel reductions.
//
// A sum over n work items (chunks of a batch) is split into Slots(n) fixed
// slots: slot s takes the items SlotRange(n, S, s), in order, and sums them
// into its own accumulator; the accumulators are then added in slot order,
// (((a₀ + a₁) + a₂) + …) element by element. Neither the split nor the order
// depends on Threads() or on which goroutine runs a slot, so the result is
// the same bits at any thread count and on every run. Slots are handed to
// the goroutines dynamically (ParallelEachN), so up to MaxSlots goroutines
// share the work.
//
// The accumulators come from SlotBuffers, a pool shared by every caller in
// the process: layers run one after another, so the memory is MaxSlots
// times the largest accumulator, not per layer.

// MaxSlots caps the number of partial accumulators of one reduction (and so
// the goroutines that can work on it at once).
const MaxSlots = 16

// Slots returns how many slots a reduction over n ≥ 0 items uses:
// min(n, MaxSlots), at least 1. It depends only on n.
func Slots(n int) int { return max(1, min(n, MaxSlots)) }

// SlotRange returns the items [lo, hi) of slot s of a reduction over n items
// in slots slots: contiguous ranges in order, sizes differing by at most one.
func SlotRange(n, slots, s int) (lo, hi int) {
	return s * n / slots, (s + 1) * n / slots
}

// SlotBuffers holds the per-slot accumulators of one reduction.
type SlotBuffers struct {
	bufs [][]float32
	n    int // slots in use
}

var slotPool struct {
	sync.Mutex
	free []*SlotBuffers
}

// AcquireSlots returns s accumulators of n floats each, with undefined
// contents (a slot's first item overwrites it), from the shared pool. Give
// them back with Release. Buffers keep their capacity across calls, so after
// the first steps no call allocates.
func AcquireSlots(s, n int) *SlotBuffers {
	if s < 1 || n < 0 {
		shapePanic("AcquireSlots", "%d slots of %d floats", s, n)
	}
	slotPool.Lock()
	var b *SlotBuffers
	if k := len(slotPool.free); k > 0 {
		b = slotPool.free[k-1]
		slotPool.free = slotPool.free[:k-1]
	}
	slotPool.Unlock()
	if b == nil {
		b = &SlotBuffers{}
	}
	for len(b.bufs) < s {
		b.bufs = append(b.bufs, nil)
	}
	for i := 0; i < s; i++ {
		b.bufs[i] = EnsureSlice(b.bufs[i], n)
	}
	b.n = s
	return b
}

// Slot returns accumulator s.
func (b *SlotBuffers) Slot(s int) []float32 { return b.bufs[s] }

// Release returns the buffers to the pool; b must not be used afterwards.
func (b *SlotBuffers) Release() {
	b.n = 0
	slotPool.Lock()
	slotPool.free = append(slotPool.free, b)
	slotPool.Unlock()
}

// Reduce adds accumulators 1 … S−1 into accumulator 0 in slot order
// (a₀ ← ((a₀ + a₁) + a₂) + …, element by element, in parallel over
// elements) and returns it.
func (b *SlotBuffers) Reduce() []float32 {
	acc := b.bufs[0]
	if b.n == 1 {
		return acc
	}
	parts := b.bufs[1:b.n]
	par.For(len(acc), 1<<14, func(lo, hi int) {
		a := acc[lo:hi]
		for _, p := range parts {
			for i, v := range p[lo:hi] {
				a[i] += v
			}
		}
	})
	return acc
}
