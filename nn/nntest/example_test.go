package nntest_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"dptrain/nn"
	"dptrain/nn/nntest"
	"dptrain/tensor"
)

// Scale multiplies each channel by a trainable factor, y[b,c,h,w] =
// x[b,c,h,w]·s[c]: a layer written outside package nn. Its per-example
// rule is direct: example i's gradient is g_i[c] = Σ_{its rows, h, w}
// dy·x, computed in float64 and kept for AccumulateClipped.
type Scale struct {
	S *nn.Param
	// Forgetful skips AddNorms: the mistake Coverage catches.
	Forgetful bool

	x, y, dx *tensor.Tensor
	perEx    []float64 // per example, C values (PerExample mode)
	sq       []float64
}

func NewScale(c int) *Scale {
	s := &Scale{S: &nn.Param{Name: "scale.s", Shape: []int{c}, Value: make([]float32, c), Grad: make([]float32, c)}}
	for i := range s.S.Value {
		s.S.Value[i] = 1 + 0.1*float32(i)
	}
	return s
}

func (s *Scale) Params() []*nn.Param     { return []*nn.Param{s.S} }
func (s *Scale) Describe() string        { return fmt.Sprintf("scale %d", len(s.S.Value)) }
func (s *Scale) Trainable() bool         { return !s.S.Frozen }
func (s *Scale) NormMethod() nn.NormRule { return nn.RuleDirect }

func (s *Scale) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	s.x = x
	s.y = tensor.New(x.Shape...)
	c, hw := x.Shape[1], x.Shape[2]*x.Shape[3]
	for i, v := range x.Data {
		s.y.Data[i] = v * s.S.Value[(i/hw)%c]
	}
	return s.y
}

func (s *Scale) Backward(dy *tensor.Tensor, ctx *nn.BackwardContext) *tensor.Tensor {
	b, c, hw := dy.Shape[0], dy.Shape[1], dy.Shape[2]*dy.Shape[3]
	if ctx.Mode == nn.PerExample && s.Trainable() {
		k := ctx.GroupSize()
		s.perEx = make([]float64, b/k*c)
		s.sq = make([]float64, b/k)
		for i, g := range dy.Data {
			row, ch := i/(c*hw), (i/hw)%c
			s.perEx[row/k*c+ch] += float64(g) * float64(s.x.Data[i])
		}
		for e := range s.sq {
			for _, v := range s.perEx[e*c : (e+1)*c] {
				s.sq[e] += v * v
			}
		}
		if !s.Forgetful {
			ctx.AddNorms(s, s.sq)
		}
	} else if s.Trainable() {
		for i, g := range dy.Data {
			s.S.Grad[(i/hw)%c] += g * s.x.Data[i]
		}
	}
	if !ctx.NeedDX {
		return nil
	}
	s.dx = tensor.New(dy.Shape...)
	for i, g := range dy.Data {
		s.dx.Data[i] = g * s.S.Value[(i/hw)%c]
	}
	return s.dx
}

// AccumulateClipped adds Σ_i coef[i]·g_i; an example with coef 0 is left
// out, never multiplied by 0.
func (s *Scale) AccumulateClipped(coef []float32) {
	c := len(s.S.Value)
	for e, f := range coef {
		if f == 0 {
			continue
		}
		for ch := 0; ch < c; ch++ {
			s.S.Grad[ch] += float32(float64(f) * s.perEx[e*c+ch])
		}
	}
}

// scaleReference is Scale's forward in float64, from the definition.
func scaleReference(c, hw int) nntest.Reference {
	return func(x []float64, ps [][]float64) []float64 {
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = v * ps[0][(i/hw)%c]
		}
		return y
	}
}

// A layer defined outside nn passes the same checks as nn's own layers,
// and one that forgets to report its per-example norms is refused.
func Example() {
	t := &recorder{}
	r := rand.New(rand.NewPCG(1, 2))
	nntest.CheckLayer(t, NewScale(3), []int{2, 3, 4, 4}, scaleReference(3, 16), r)

	// In a model with nn's layers: a convolution below the new layer.
	model := func(forgetful bool) *nn.Model {
		sc := NewScale(4)
		sc.Forgetful = forgetful
		return &nn.Model{Name: "conv+scale", InputShape: [3]int{3, 6, 6},
			Layers: []nn.Layer{nn.NewConv2d("conv", 3, 4, 3, 1, 1, true, false, rand.New(rand.NewPCG(3, 4))), sc}}
	}
	nntest.CheckPerExample(t, model(false), []int{6, 3, 6, 6}, 2, r)
	fmt.Println("checks passed:", !t.failed)
	fmt.Println("covered:", nntest.Coverage(model(false), []int{4, 3, 6, 6}, 1) == nil)

	err := nntest.Coverage(model(true), []int{4, 3, 6, 6}, 1)
	var ce *nn.CoverageError
	fmt.Println("forgetful layer refused:", errors.As(err, &ce), ce.Missing)
	// Output:
	// checks passed: true
	// covered: true
	// forgetful layer refused: true [scale.s]
}

// TestScaleLayerPassesAndBrokenOnesFail: the suite passes the correct
// layer, and fails a layer whose backward is wrong, so the checks can fail.
func TestScaleLayerPassesAndBrokenOnesFail(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	nntest.CheckLayer(t, NewScale(2), []int{3, 2, 2, 3}, scaleReference(2, 6), r)
	bad := &recorder{}
	func() {
		defer func() { recover() }() // Fatalf stops the check
		nntest.CheckLayer(bad, NewScale(2), []int{3, 2, 2, 3}, func(x []float64, ps [][]float64) []float64 {
			y := scaleReference(2, 6)(x, ps)
			y[0] *= 1.01 // a reference the layer does not match
			return y
		}, r)
	}()
	if !bad.failed {
		t.Fatal("CheckLayer passed a layer that does not match its reference")
	}
	noisy := &recorder{}
	m := &nn.Model{Name: "scale", InputShape: [3]int{2, 2, 3}, Layers: []nn.Layer{&halfNorms{NewScale(2)}}}
	func() {
		defer func() { recover() }()
		nntest.CheckPerExample(noisy, m, []int{4, 2, 2, 3}, 1, r)
	}()
	if !noisy.failed {
		t.Fatal("CheckPerExample passed norms below the exact ones")
	}
}

// halfNorms reports a quarter of each squared norm: below the exact one,
// which would under-clip.
type halfNorms struct{ *Scale }

func (h *halfNorms) Backward(dy *tensor.Tensor, ctx *nn.BackwardContext) *tensor.Tensor {
	h.Scale.Forgetful = true
	dx := h.Scale.Backward(dy, ctx)
	if ctx.Mode == nn.PerExample {
		q := make([]float64, len(h.sq))
		for i, v := range h.sq {
			q[i] = v / 4
		}
		ctx.AddNorms(h, q)
	}
	return dx
}

// recorder is a T that records failure; Fatalf stops with a panic.
type recorder struct{ failed bool }

func (r *recorder) Helper()                   {}
func (r *recorder) Errorf(string, ...any)     { r.failed = true }
func (r *recorder) Fatalf(f string, a ...any) { r.failed = true; panic(fmt.Sprintf(f, a...)) }
