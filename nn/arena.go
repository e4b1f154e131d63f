package nn

import (
	"math"

	"dptrain/tensor"
)

// gradArena lends the buffers that hold activation gradients (∂L/∂x of each
// layer) during the backward passes of one Model, so that a gradient takes
// memory only from the layer that writes it to the layer that reads it.
// Without it every layer kept its own input-gradient buffer across steps: a
// second copy of the activations (PyTorch frees each gradient once it is
// consumed).
//
// The rules, which backwardSeq and Residual follow:
//   - A layer's Backward takes its dx from BackwardContext.Grad and returns
//     it; it never releases its dy: the caller does, once every consumer of
//     dy has returned (BackwardContext.Done).
//   - A layer that keeps dy past its Backward (for AccumulateClipped) says
//     so with BackwardContext.Keep; Done is then a no-op for that buffer
//     until the next backward pass.
//   - The Model resets the arena at the start of each backward pass: what
//     the previous pass lent or kept is free again. Nothing of a backward
//     pass is read after the next one starts (AccumulateClipped runs
//     between them).
//
// A buffer released too early would be overwritten while still read, so
// each release names the buffer by its first element and checks that it is
// lent; buffers the arena does not know (a layer's own, the loss's) are
// never touched. A gradient forgotten (not released) costs memory until the
// reset, never correctness. The buffers are not cleared: every layer writes
// each element of its dx.
type gradArena struct {
	slots []gradSlot
	index map[*float32]int // first element → slot
	// poison (tests) fills each released or reset buffer with NaN, so
	// that a read after release shows.
	poison bool
}

type slotState uint8

const (
	slotFree slotState = iota
	slotLent           // held by the pass, released by Done
	slotKept           // held until the next reset (Keep)
)

type gradSlot struct {
	buf   []float32
	state slotState
}

// get lends the smallest free buffer that holds the shape, or a new one.
func (a *gradArena) get(shape ...int) *tensor.Tensor {
	n := tensor.Numel(shape...)
	if n == 0 {
		return tensor.New(shape...)
	}
	best := -1
	for i, s := range a.slots {
		if s.state == slotFree && cap(s.buf) >= n && (best < 0 || cap(s.buf) < cap(a.slots[best].buf)) {
			best = i
		}
	}
	if best < 0 {
		buf := make([]float32, n)
		if a.index == nil {
			a.index = make(map[*float32]int)
		}
		best = len(a.slots)
		a.index[&buf[0]] = best
		a.slots = append(a.slots, gradSlot{buf: buf})
	}
	s := &a.slots[best]
	s.state = slotLent
	return &tensor.Tensor{Shape: append([]int(nil), shape...), Data: s.buf[:n]}
}

// slot returns the slot whose buffer starts where t's data does, or nil.
func (a *gradArena) slot(t *tensor.Tensor) *gradSlot {
	if t == nil || len(t.Data) == 0 || a.index == nil {
		return nil
	}
	i, ok := a.index[&t.Data[0]]
	if !ok {
		return nil
	}
	return &a.slots[i]
}

// release frees a lent buffer; kept and unknown buffers are left alone.
func (a *gradArena) release(t *tensor.Tensor) {
	if s := a.slot(t); s != nil && s.state == slotLent {
		s.state = slotFree
		a.poisonSlot(s)
	}
}

func (a *gradArena) poisonSlot(s *gradSlot) {
	if a.poison {
		nan := float32(math.NaN())
		for i := range s.buf[:cap(s.buf)] {
			s.buf[i] = nan
		}
	}
}

// keep holds a lent buffer until the next reset.
func (a *gradArena) keep(t *tensor.Tensor) {
	if s := a.slot(t); s != nil && s.state == slotLent {
		s.state = slotKept
	}
}

// lent reports whether t is a buffer the arena lent and nobody kept.
func (a *gradArena) lent(t *tensor.Tensor) bool {
	s := a.slot(t)
	return s != nil && s.state == slotLent
}

// reset frees every buffer (the start of a backward pass).
func (a *gradArena) reset() {
	for i := range a.slots {
		a.slots[i].state = slotFree
		a.poisonSlot(&a.slots[i])
	}
}

// floats is the arena's size in float32 values.
func (a *gradArena) floats() int {
	n := 0
	for _, s := range a.slots {
		n += cap(s.buf)
	}
	return n
}

// Grad returns a buffer of the given shape for a layer's input gradient:
// lent by the model's arena in a Model backward pass, else the layer's own
// buffer *own, reused when it has the capacity (tensor.Ensure) and stored
// back in *own (which an arena pass leaves alone). Its contents are
// arbitrary: the layer writes every element.
func (c *BackwardContext) Grad(own **tensor.Tensor, shape ...int) *tensor.Tensor {
	if c.arena != nil {
		return c.arena.get(shape...)
	}
	*own = tensor.Ensure(*own, shape...)
	return *own
}

// Done tells that every reader of the gradient t has returned: its buffer
// may be lent again (a no-op for buffers the arena did not lend, and for
// kept ones).
func (c *BackwardContext) Done(t *tensor.Tensor) {
	if c.arena != nil {
		c.arena.release(t)
	}
}

// Keep tells that the layer reads dy after its Backward returns (in
// AccumulateClipped): Done leaves its buffer alone until the next backward
// pass.
func (c *BackwardContext) Keep(dy *tensor.Tensor) {
	if c.arena != nil {
		c.arena.keep(dy)
	}
}

// overwritable reports whether t is a lent gradient that nobody else reads:
// lent by the arena, not kept, and not one of the tensors in (which the
// caller still reads or does not own).
func (c *BackwardContext) overwritable(t *tensor.Tensor, in ...*tensor.Tensor) bool {
	if c.arena == nil || !c.arena.lent(t) {
		return false
	}
	for _, u := range in {
		if sameData(t, u) {
			return false
		}
	}
	return true
}

// sameData reports whether a and b are views of the same buffer start.
func sameData(a, b *tensor.Tensor) bool {
	return a != nil && b != nil && len(a.Data) > 0 && len(b.Data) > 0 && &a.Data[0] == &b.Data[0]
}
