package nntest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"dptrain/nn"
	"dptrain/tensor"
)

// Tolerances of CheckPerExample (relative).
const (
	normTol = 1e-4 // per-example squared norms against the reference
	sumTol  = 1e-4 // the clipped sum, in norm
)

// LayerModel wraps l into a one-layer model for CheckPerExample and
// Coverage. in is the shape of one row of l's input: [C, H, W] for an image
// layer, or [F] for a layer on flat features (which gets a Flatten below
// it, as Model.Forward takes images).
func LayerModel(l nn.Layer, in ...int) *nn.Model {
	m := &nn.Model{Name: l.Describe(), Layers: []nn.Layer{l}}
	switch len(in) {
	case 3:
		m.InputShape = [3]int{in[0], in[1], in[2]}
	case 1:
		m.Layers = []nn.Layer{&nn.Flatten{}, l}
		m.InputShape = [3]int{in[0], 1, 1}
	default:
		panic(fmt.Sprintf("nntest.LayerModel: input shape %v, want [C H W] or [F]", in))
	}
	return m
}

// CheckPerExample checks m's PerExample backward pass on a random batch of
// shape in (in[0] = n·k rows, k consecutive rows per example) and random
// output gradients, both drawn from r, against the naive reference: each
// example run alone (its k rows as a batch) through the Accumulate-mode
// backward pass that CheckLayer checks. It checks that
//
//   - BackwardPerExample leaves dy unchanged and covers the trainable
//     parameters exactly (Model.CheckCoverage: a layer that does not report
//     its norms, or reports another layer's, fails here);
//   - each example's squared norm matches the reference ‖g_i‖² to a
//     relative 1e-4, and the per-layer norms add up to it;
//   - AccumulateClipped(coef), random coef, adds Σ coef_i·g_i (to a
//     relative 1e-4);
//   - with example 0's input made NaN and infinite and coef_0 = 0, the
//     clipped sum is finite and is that of the other examples, whose norms
//     do not change (the coef = 0 contract).
//
// The reference is float32 arithmetic, so the norms are compared within
// its rounding: whether they bound the exact ones to the last bit is for
// zero-tolerance tests like nn's normbound_exact_test.go. To check every
// norm rule of nn's convolutions, set their ForceNorm and call
// CheckPerExample once per rule.
func CheckPerExample(t T, m *nn.Model, in []int, k int, r *rand.Rand) {
	t.Helper()
	k = max(k, 1)
	if len(in) != 4 || in[0]%k != 0 || in[0] == 0 {
		t.Fatalf("%s: input shape %v: want [n·k C H W] with k = %d", m.Name, in, k)
	}
	x := fromF64(randoms(r, numel(in)), in...)
	out := m.Forward(x, true)
	dy := fromF64(randoms(r, len(out.Data)), out.Shape...)
	want := microbatches(m, x, dy, k)
	coef := make([]float32, len(want))
	for i := range coef {
		coef[i] = float32(r.Float64())
	}
	checkClipped(t, m.Name, m, x, dy, k, want, coef, -1)
	if len(want) > 1 {
		coef[0] = 0
		checkClipped(t, m.Name+", example 0 non-finite with coefficient 0", m, poisoned(x, k), dy, k, want, coef, 0)
	}
}

// Coverage runs one per-example backward pass of m on zeros of shape in
// and returns the *nn.CoverageError it refuses the model with (a trainable
// parameter whose layer did not report per-example norms, or reported
// twice), or nil when every trainable parameter is covered exactly once.
func Coverage(m *nn.Model, in []int, k int) error {
	x := tensor.New(in...)
	out := m.Forward(x, true)
	_, err := backwardPerExample(m, tensor.New(out.Shape...), nn.PerExampleOptions{Group: k})
	return err
}

// microbatches returns each example's gradient (trainable parameters, in
// Params order) from its k rows run alone through the Accumulate backward.
func microbatches(m *nn.Model, x, dy *tensor.Tensor, k int) [][]float64 {
	n := x.Shape[0] / k
	out := make([][]float64, n)
	for i := range out {
		m.ZeroGrad()
		m.Forward(x.Slice0(i*k, (i+1)*k), true)
		m.Backward(dy.Slice0(i*k, (i+1)*k))
		out[i] = trainableGrads(m)
	}
	return out
}

func trainableGrads(m *nn.Model) []float64 {
	var g []float64
	for _, p := range m.Params() {
		if !p.Frozen {
			g = append(g, toF64(p.Grad)...)
		}
	}
	return g
}

// poisoned returns a copy of x whose first example (its k rows) holds NaN
// and ±Inf entries.
func poisoned(x *tensor.Tensor, k int) *tensor.Tensor {
	b := tensor.FromData(slices.Clone(x.Data), x.Shape...)
	per := len(x.Data) / x.Shape[0]
	for a := 0; a < k; a++ {
		row := b.Data[a*per : (a+1)*per]
		row[0] = float32(math.NaN())
		row[per-1] = float32(math.Inf(1))
		if per > 2 {
			row[per/2] = float32(math.Inf(-1))
		}
	}
	return b
}

// checkClipped runs one private step of m (Forward, BackwardPerExample,
// AccumulateClipped(coef)) and compares its norms and clipped sum with the
// reference gradients want; example skip (≥ 0) has a non-finite input: its
// norm is not compared.
func checkClipped(t T, what string, m *nn.Model, x, dy *tensor.Tensor, k int, want [][]float64, coef []float32, skip int) {
	t.Helper()
	m.ZeroGrad()
	m.Forward(x, true)
	dy0 := slices.Clone(dy.Data)
	res, err := backwardPerExample(m, dy, nn.PerExampleOptions{Group: k, PerLayer: true})
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if !slices.Equal(dy.Data, dy0) {
		t.Errorf("%s: BackwardPerExample modified dy", what)
	}
	if len(res.SqNorms) != len(want) {
		t.Fatalf("%s: %d norms for %d examples", what, len(res.SqNorms), len(want))
	}
	for i, g := range want {
		if i == skip {
			continue
		}
		var exact float64
		for _, v := range g {
			exact += v * v
		}
		if got := res.SqNorms[i]; !(math.Abs(got-exact) <= normTol*exact+1e-10) {
			t.Errorf("%s: example %d: ‖g‖² = %.10g, reference %.10g", what, i, got, exact)
		}
		var perLayer float64
		for _, ln := range res.LayerNorms {
			perLayer += ln[i]
		}
		if !(math.Abs(perLayer-res.SqNorms[i]) <= 1e-9*res.SqNorms[i]) {
			t.Errorf("%s: example %d: per-layer norms add to %g, total %g", what, i, perLayer, res.SqNorms[i])
		}
	}
	m.AccumulateClipped(coef)
	got := trainableGrads(m)
	var diff, norm float64
	for j, v := range got {
		if !finite(v) {
			t.Errorf("%s: clipped sum[%d] = %g", what, j, v)
			return
		}
		var s float64
		for i, g := range want {
			if coef[i] != 0 {
				s += float64(coef[i]) * g[j]
			}
		}
		diff += (v - s) * (v - s)
		norm += s * s
	}
	if math.Sqrt(diff) > sumTol*math.Sqrt(norm)+1e-12 {
		t.Errorf("%s: AccumulateClipped: Σ coef·g off by %.3g relative", what, math.Sqrt(diff/norm))
	}
}

// backwardPerExample is m.BackwardPerExample with a *nn.CoverageError
// panic returned as an error.
func backwardPerExample(m *nn.Model, dy *tensor.Tensor, opt nn.PerExampleOptions) (res *nn.PerExampleResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			var ce *nn.CoverageError
			if e, ok := v.(error); ok && errors.As(e, &ce) {
				err = ce
				return
			}
			panic(v)
		}
	}()
	return m.BackwardPerExample(dy, opt), nil
}
