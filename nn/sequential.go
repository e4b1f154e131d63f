package nn

import (
	"strings"

	"dptrain/tensor"
)

// Sequential applies layers in order.
type Sequential struct {
	Layers []Layer
}

func (s *Sequential) Describe() string {
	parts := make([]string, len(s.Layers))
	for i, l := range s.Layers {
		parts[i] = l.Describe()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func (s *Sequential) Params() []*Param { return collectParams(s.Layers) }

// Children returns the layers (Container).
func (s *Sequential) Children() []Layer { return s.Layers }

func collectParams(ls []Layer) []*Param {
	var ps []*Param
	for _, l := range ls {
		ps = append(ps, l.Params()...)
	}
	return ps
}

func (s *Sequential) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	return forwardSeq(s.Layers, x, train)
}

func (s *Sequential) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	return backwardSeq(s.Layers, dy, ctx)
}

func forwardSeq(ls []Layer, x *tensor.Tensor, train bool) *tensor.Tensor {
	for i, l := range ls {
		switch a := l.(type) {
		case *ReLU:
			a.inPlace = i > 0 && outputFree(ls[i-1])
		case *Tanh:
			a.inPlace = i > 0 && outputFree(ls[i-1])
		}
		x = l.Forward(x, train)
	}
	return x
}

// inPlace enables the in-place forward passes that outputFree allows
// (tests turn it off to compare against separate buffers).
var inPlace = true

// outputFree reports whether nothing of l reads its output after the next
// layer's Forward has: its Backward works from its input (and what it
// kept), so the next layer may overwrite the output in place (an in-place
// ReLU, a residual sum into its main branch's output). Layers not listed
// are assumed to read it.
func outputFree(l Layer) bool {
	if !inPlace {
		return false
	}
	switch l := l.(type) {
	case *GroupNorm, *BatchNorm2d, *Linear:
		return true
	case *Conv2d:
		return !l.WS // the WS correction of the norms reads y
	}
	return false
}

// backwardSeq runs the layers' backward passes from the top, releasing each
// intermediate gradient once the layer below has read it (never dy, which is
// the caller's; the result is the caller's to release). Below the lowest
// layer with trainable parameters nothing is computed unless ctx.NeedDX asks
// for the gradient of the sequence's input; the lowest layer that runs gets
// NeedDX only if the caller needs it.
func backwardSeq(ls []Layer, dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	need := ctx.NeedDX
	lo := 0
	if !need {
		lo = len(ls)
		for i, l := range ls {
			if trainable(l) {
				lo = i
				break
			}
		}
	}
	g := dy
	for i := len(ls) - 1; i >= lo; i-- {
		ctx.NeedDX = i > lo || need
		dx := ls[i].Backward(g, ctx)
		// g has been read: release it, unless it is the caller's dy or
		// the layer handed it back as its own gradient (a view).
		if g != dy && !sameData(g, dy) && !sameData(g, dx) {
			ctx.Done(g)
		}
		g = dx
	}
	ctx.NeedDX = need
	if !need {
		return nil
	}
	return g
}
