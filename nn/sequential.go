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
	for _, l := range ls {
		x = l.Forward(x, train)
	}
	return x
}

// backwardSeq runs the layers' backward passes from the top. Below the lowest
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
	for i := len(ls) - 1; i >= lo; i-- {
		ctx.NeedDX = i > lo || need
		dy = ls[i].Backward(dy, ctx)
	}
	ctx.NeedDX = need
	if !need {
		return nil
	}
	return dy
}
