package nn

import (
	"dptrain/internal/par"
	"dptrain/tensor"
)

// ReLU is y = max(0, x).
type ReLU struct {
	y, dx, own *tensor.Tensor
	// inPlace (set by forwardSeq for the next Forward) writes y over x:
	// x is the output of the layer before in the same sequence, which
	// nothing reads once this layer has (outputFree).
	inPlace bool
}

// output returns the buffer an activation writes its output to: x itself
// when *inPlace (then cleared: forwardSeq sets it for each Forward), else
// the layer's own buffer *own.
func output(inPlace *bool, own **tensor.Tensor, x *tensor.Tensor) *tensor.Tensor {
	if *inPlace {
		*inPlace = false
		return x
	}
	*own = tensor.Ensure(*own, x.Shape...)
	return *own
}

func (*ReLU) Describe() string { return "relu" }
func (*ReLU) Params() []*Param { return nil }

func (r *ReLU) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	r.y = output(&r.inPlace, &r.own, x)
	xs, ys := x.Data, r.y.Data
	par.For(len(xs), 1<<15, func(lo, hi int) {
		tensor.ReLU(ys[lo:hi], xs[lo:hi])
	})
	return r.y
}

func (r *ReLU) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if !ctx.NeedDX {
		return nil
	}
	dx := ctx.Grad(&r.dx, dy.Shape...)
	ys, g, d := r.y.Data, dy.Data, dx.Data
	par.For(len(g), 1<<15, func(lo, hi int) {
		tensor.ReLUMask(d[lo:hi], g[lo:hi], ys[lo:hi])
	})
	return dx
}

// Tanh is y = tanh(x), computed in float32 to within 2.5e-7 relative
// error (tensor.Tanh).
type Tanh struct {
	y, dx, own *tensor.Tensor
	inPlace    bool // as ReLU's
}

func (*Tanh) Describe() string { return "tanh" }
func (*Tanh) Params() []*Param { return nil }

func (t *Tanh) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	t.y = output(&t.inPlace, &t.own, x)
	xs, ys := x.Data, t.y.Data
	par.For(len(xs), 1<<12, func(lo, hi int) {
		tensor.Tanh(ys[lo:hi], xs[lo:hi])
	})
	return t.y
}

func (t *Tanh) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if !ctx.NeedDX {
		return nil
	}
	dx := ctx.Grad(&t.dx, dy.Shape...)
	ys, g, d := t.y.Data, dy.Data, dx.Data
	par.For(len(g), 1<<15, func(lo, hi int) {
		tensor.TanhBackward(d[lo:hi], g[lo:hi], ys[lo:hi])
	})
	return dx
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
