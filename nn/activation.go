package nn

import (
	"math"

	"dptrain/tensor"
)

// ReLU is y = max(0, x).
type ReLU struct{ y, dx *tensor.Tensor }

func (*ReLU) Describe() string { return "relu" }
func (*ReLU) Params() []*Param { return nil }

func (r *ReLU) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	r.y = tensor.Ensure(r.y, x.Shape...)
	xs, ys := x.Data, r.y.Data
	tensor.ParallelFor(len(xs), 1<<15, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ys[i] = max(xs[i], 0)
		}
	})
	return r.y
}

func (r *ReLU) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if !ctx.NeedDX {
		return nil
	}
	r.dx = tensor.Ensure(r.dx, dy.Shape...)
	ys, g, d := r.y.Data, dy.Data, r.dx.Data
	tensor.ParallelFor(len(g), 1<<15, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if ys[i] > 0 {
				d[i] = g[i]
			} else {
				d[i] = 0
			}
		}
	})
	return r.dx
}

// Tanh is y = tanh(x).
type Tanh struct{ y, dx *tensor.Tensor }

func (*Tanh) Describe() string { return "tanh" }
func (*Tanh) Params() []*Param { return nil }

func (t *Tanh) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	t.y = tensor.Ensure(t.y, x.Shape...)
	xs, ys := x.Data, t.y.Data
	tensor.ParallelFor(len(xs), 1<<13, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ys[i] = float32(math.Tanh(float64(xs[i])))
		}
	})
	return t.y
}

func (t *Tanh) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if !ctx.NeedDX {
		return nil
	}
	t.dx = tensor.Ensure(t.dx, dy.Shape...)
	ys, g, d := t.y.Data, dy.Data, t.dx.Data
	tensor.ParallelFor(len(g), 1<<15, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d[i] = g[i] * (1 - ys[i]*ys[i])
		}
	})
	return t.dx
}

// Flatten reshapes [B, …] to [B, prod(…)] without copying.
type Flatten struct{ in []int }

func (*Flatten) Describe() string { return "flatten" }
func (*Flatten) Params() []*Param { return nil }

func (f *Flatten) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	f.in = append(f.in[:0], x.Shape...)
	return x.Reshape(x.Shape[0], len(x.Data)/max(x.Shape[0], 1))
}

func (f *Flatten) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if !ctx.NeedDX {
		return nil
	}
	return dy.Reshape(f.in...)
}
