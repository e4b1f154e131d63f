package nntest_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"dptrain/nn"
	"dptrain/nn/nntest"
	"dptrain/tensor"
)

// recorder is an nntest.T that records failures instead of failing: the
// harness's own tests check that it catches broken layers. Fatalf stops
// the check with a panic that failures recovers.
type recorder struct{ msgs []string }

type stopped struct{}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(stopped{})
}

// failures runs check against a recorder and returns what it reported.
func failures(check func(t nntest.T)) []string {
	rec := &recorder{}
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(stopped); !ok {
					panic(p)
				}
			}
		}()
		check(rec)
	}()
	return rec.msgs
}

func wantFailure(t *testing.T, what, substr string, msgs []string) {
	t.Helper()
	for _, m := range msgs {
		if strings.Contains(m, substr) {
			return
		}
	}
	t.Errorf("%s: the harness did not report %q (reported: %q)", what, substr, msgs)
}

// Broken variants of Scale, one bug each.
type (
	wrongGrad    struct{ *Scale } // adds 1.5× the gradient
	overwrites   struct{ *Scale } // sets Param.Grad instead of adding to it
	modifiesDY   struct{ *Scale } // scribbles on its argument
	halfNorms    struct{ *Scale } // reports half the squared norms
	zeroTimes    struct{ *Scale } // AccumulateClipped multiplies by c = 0
	firstRowOnly struct{ *Scale } // forgets the other rows of an example
)

func (l wrongGrad) Backward(dy *tensor.Tensor, ctx *nn.BackwardContext) *tensor.Tensor {
	before := append([]float32(nil), l.S.Grad...)
	dx := l.Scale.Backward(dy, ctx)
	for i := range l.S.Grad {
		l.S.Grad[i] += 0.5 * (l.S.Grad[i] - before[i])
	}
	return dx
}

func (l overwrites) Backward(dy *tensor.Tensor, ctx *nn.BackwardContext) *tensor.Tensor {
	clear(l.S.Grad)
	return l.Scale.Backward(dy, ctx)
}

func (l modifiesDY) Backward(dy *tensor.Tensor, ctx *nn.BackwardContext) *tensor.Tensor {
	dx := l.Scale.Backward(dy, ctx)
	dy.Data[0]++
	return dx
}

// backwardAs runs Scale's backward pass but reports its per-example norms,
// changed by edit, as those of l (a wrapper whose AccumulateClipped is then
// the one the model calls).
func backwardAs(l nn.GradLayer, s *Scale, dy *tensor.Tensor, ctx *nn.BackwardContext, edit func(sq []float64)) *tensor.Tensor {
	if ctx.Mode != nn.PerExample {
		return s.Backward(dy, ctx)
	}
	sub := *ctx
	sub.SqNorms = make([]float64, len(ctx.SqNorms))
	sub.Layers, sub.LayerNorms = nil, nil
	dx := s.Backward(dy, &sub)
	edit(sub.SqNorms)
	ctx.AddNorms(l, sub.SqNorms)
	return dx
}

func (l halfNorms) Backward(dy *tensor.Tensor, ctx *nn.BackwardContext) *tensor.Tensor {
	return backwardAs(l, l.Scale, dy, ctx, func(sq []float64) {
		for i := range sq {
			sq[i] /= 2
		}
	})
}

func (l zeroTimes) Backward(dy *tensor.Tensor, ctx *nn.BackwardContext) *tensor.Tensor {
	return backwardAs(l, l.Scale, dy, ctx, func([]float64) {})
}

func (l zeroTimes) AccumulateClipped(coef []float32) {
	c := len(l.S.Value)
	for j, cj := range coef {
		for ch := 0; ch < c; ch++ {
			l.S.Grad[ch] += cj * l.g[j*c+ch]
		}
	}
}

func (l firstRowOnly) Backward(dy *tensor.Tensor, ctx *nn.BackwardContext) *tensor.Tensor {
	if ctx.Mode != nn.PerExample || ctx.GroupSize() == 1 {
		return l.Scale.Backward(dy, ctx)
	}
	sub := *ctx
	sub.SqNorms = make([]float64, len(ctx.SqNorms))
	sub.Layers, sub.LayerNorms = nil, nil
	k := ctx.GroupSize()
	dx := l.Scale.Backward(dy, &sub)
	// recompute the norms from each example's first row alone
	c := len(l.S.Value)
	b := dy.Shape[0]
	hw := len(dy.Data) / (b * c)
	sq := make([]float64, b/k)
	for j := range sq {
		for ch := 0; ch < c; ch++ {
			var s float64
			i := (j*k*c + ch) * hw
			for q := i; q < i+hw; q++ {
				s += float64(dy.Data[q]) * float64(l.x.Data[q])
			}
			sq[j] += s * s
		}
	}
	ctx.AddNorms(l, sq)
	return dx
}

// TestHarnessCatchesBrokenLayers: each broken variant of Scale fails the
// check meant to catch it, with a message that says what is wrong, and the
// correct layer fails none.
func TestHarnessCatchesBrokenLayers(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	in := []int{2, 3, 4, 5}
	ref := scaleReference(3, 20)
	scale := func() *Scale { return randomScale(r, 3) }
	model := func(l nn.Layer) *nn.Model { return nntest.LayerModel(l, 3, 4, 5) }
	perEx := []int{3, 3, 4, 5}
	for _, tc := range []struct {
		name, want string
		check      func(t nntest.T)
	}{
		{"wrong gradient", "finite difference", func(t nntest.T) { nntest.CheckLayer(t, wrongGrad{scale()}, in, ref, r) }},
		{"wrong gradient, no reference", "finite difference", func(t nntest.T) { nntest.CheckLayer(t, wrongGrad{scale()}, in, nil, r) }},
		{"reference mismatch", "reference", func(t nntest.T) {
			nntest.CheckLayer(t, scale(), in, func(x []float64, ps [][]float64) []float64 {
				y := ref(x, ps)
				y[0] = y[0]*1.01 + 0.01
				return y
			}, r)
		}},
		{"overwrites Param.Grad", "twice", func(t nntest.T) { nntest.CheckLayer(t, overwrites{scale()}, in, ref, r) }},
		{"modifies dy", "modified dy", func(t nntest.T) { nntest.CheckLayer(t, modifiesDY{scale()}, in, ref, r) }},
		{"modifies dy (per example)", "modified dy", func(t nntest.T) { nntest.CheckPerExample(t, model(modifiesDY{scale()}), perEx, 1, r) }},
		{"reports no norms", "do not cover", func(t nntest.T) { nntest.CheckPerExample(t, model(leakyScale{scale()}), perEx, 1, r) }},
		{"half the norms", "‖g‖²", func(t nntest.T) { nntest.CheckPerExample(t, model(halfNorms{scale()}), perEx, 1, r) }},
		{"multiplies by a zero coefficient", "clipped sum[", func(t nntest.T) { nntest.CheckPerExample(t, model(zeroTimes{scale()}), perEx, 1, r) }},
		{"forgets an example's other rows", "‖g‖²", func(t nntest.T) {
			nntest.CheckPerExample(t, model(firstRowOnly{scale()}), []int{6, 3, 4, 5}, 2, r)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantFailure(t, tc.name, tc.want, failures(tc.check)) })
	}
	if msgs := failures(func(tt nntest.T) {
		nntest.CheckLayer(tt, scale(), in, ref, r)
		nntest.CheckLayer(tt, scale(), in, nil, r)
		nntest.CheckPerExample(tt, model(scale()), []int{6, 3, 4, 5}, 2, r)
	}); len(msgs) > 0 {
		t.Errorf("the correct layer failed: %q", msgs)
	}
	if err := nntest.Coverage(model(scale()), perEx, 1); err != nil {
		t.Errorf("Coverage of the correct layer: %v", err)
	}
}
