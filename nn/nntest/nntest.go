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

// T is the part of testing.TB the checks use.
type T interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Reference is a layer's forward pass in float64, written from its
// definition: x has the input's shape (row-major), params the layer's
// parameters in the order of Params. It returns the output, row-major.
type Reference func(x []float64, params [][]float64) []float64

// CheckLayer checks l on a random input of shape in (drawn from r) against
// ref: the forward pass to a relative 1e-4, the backward pass (dx and
// every non-frozen parameter's gradient, in Accumulate mode) to a relative
// 2e-3 of central finite differences (h = 1e-5) of ref, and that Backward
// leaves dy unchanged. Frozen parameters must get no gradient.
func CheckLayer(t T, l nn.Layer, in []int, ref Reference, r *rand.Rand) {
	t.Helper()
	x64 := randoms(r, numel(in))
	ps := l.Params()
	p64 := make([][]float64, len(ps))
	for i, p := range ps {
		p64[i] = toF64(p.Value)
	}
	y := l.Forward(fromF64(x64, in...), true)
	want := ref(x64, p64)
	if len(y.Data) != len(want) {
		t.Fatalf("forward: %d outputs (shape %v), reference %d", len(y.Data), y.Shape, len(want))
	}
	for i, w := range want {
		if !near(float64(y.Data[i]), w, 1e-4) {
			t.Fatalf("forward[%d] = %g, reference %g", i, y.Data[i], w)
		}
	}
	w := randoms(r, len(want))
	loss := func() float64 {
		s := 0.0
		for i, v := range ref(x64, p64) {
			s += w[i] * v
		}
		return s
	}
	for _, p := range ps {
		clear(p.Grad)
	}
	dy := fromF64(w, y.Shape...)
	dy0 := slices.Clone(dy.Data)
	dx := l.Backward(dy, &nn.BackwardContext{Mode: nn.Accumulate, NeedDX: true})
	if !slices.Equal(dy.Data, dy0) {
		t.Fatalf("Backward modified dy")
	}
	if dx == nil || len(dx.Data) != len(x64) {
		t.Fatalf("Backward with NeedDX returned %v, want %d input gradients", dx, len(x64))
	}
	for i := range x64 {
		if g := centralDiff(loss, x64, i); !near(float64(dx.Data[i]), g, 2e-3) {
			t.Fatalf("dx[%d] = %g, finite difference %g", i, dx.Data[i], g)
		}
	}
	for j, p := range ps {
		for i := range p.Value {
			g := centralDiff(loss, p64[j], i)
			if p.Frozen {
				g = 0
			}
			if !near(float64(p.Grad[i]), g, 2e-3) {
				t.Fatalf("%s grad[%d] = %g, finite difference %g (frozen: %v)", p.Name, i, p.Grad[i], g, p.Frozen)
			}
		}
	}
}

// CheckPerExample checks m's per-example machinery on a random batch of
// shape in (in[0] = n·k rows, k rows per example) drawn from r: each
// example's reported ‖g_i‖² bounds the exact one from above within a
// relative 1e-4 (exact: that example alone through the Accumulate
// backward), per-layer norms add up to it, and AccumulateClipped with
// random coefficients gives Σ coef_i·g_i to a relative 1e-4.
func CheckPerExample(t T, m *nn.Model, in []int, k int, r *rand.Rand) {
	t.Helper()
	if in[0]%k != 0 {
		t.Fatalf("batch of %d rows is not a multiple of k = %d", in[0], k)
	}
	x := fromF64(randoms(r, numel(in)), in...)
	out := m.Forward(x, true)
	dy := fromF64(randoms(r, len(out.Data)), out.Shape...)
	want := microbatches(m, x, dy, k)
	coef := make([]float32, len(want))
	for i := range coef {
		coef[i] = float32(r.Float64())
	}
	m.ZeroGrad()
	m.Forward(x, true)
	res := m.BackwardPerExample(dy, nn.PerExampleOptions{Group: k, PerLayer: true})
	for i, g := range want {
		exact := dot(g, g)
		if res.SqNorms[i] < exact*(1-1e-9)-1e-12 || res.SqNorms[i] > exact*(1+1e-4)+1e-10 {
			t.Errorf("example %d: ‖g‖² = %.10g, exact %.10g: want an upper bound within 1e-4", i, res.SqNorms[i], exact)
		}
		var perLayer float64
		for _, ln := range res.LayerNorms {
			perLayer += ln[i]
		}
		if math.Abs(perLayer-res.SqNorms[i]) > 1e-9*(1+res.SqNorms[i]) {
			t.Errorf("example %d: per-layer norms add to %g, total %g", i, perLayer, res.SqNorms[i])
		}
	}
	m.AccumulateClipped(coef)
	got := trainableGrads(m)
	var diff, norm float64
	for j := range got {
		var s float64
		for i, g := range want {
			s += float64(coef[i]) * g[j]
		}
		diff += (got[j] - s) * (got[j] - s)
		norm += s * s
	}
	if math.Sqrt(diff) > 1e-4*math.Sqrt(norm)+1e-12 {
		t.Errorf("AccumulateClipped: Σ coef·g off by %g relative", math.Sqrt(diff/norm))
	}
}

// Coverage runs one per-example backward pass of m on zeros of shape in
// and returns the *nn.CoverageError it refuses the model with (a trainable
// parameter whose layer did not report per-example norms, or reported
// twice), or nil when every trainable parameter is covered exactly once.
func Coverage(m *nn.Model, in []int, k int) (err error) {
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
	x := tensor.New(in...)
	out := m.Forward(x, true)
	m.BackwardPerExample(tensor.New(out.Shape...), nn.PerExampleOptions{Group: k})
	return nil
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

func centralDiff(f func() float64, v []float64, i int) float64 {
	const h = 1e-5
	old := v[i]
	v[i] = old + h
	lp := f()
	v[i] = old - h
	lm := f()
	v[i] = old
	return (lp - lm) / (2 * h)
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol*(1+math.Abs(want)) }

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func randoms(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		// float32-representable, so the layer and the reference see the
		// same input.
		v[i] = float64(float32(2*r.Float64() - 1))
	}
	return v
}

func toF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func fromF64(v []float64, shape ...int) *tensor.Tensor {
	if numel(shape) != len(v) {
		panic(fmt.Sprintf("nntest: %d values for shape %v", len(v), shape))
	}
	d := make([]float32, len(v))
	for i, x := range v {
		d[i] = float32(x)
	}
	return tensor.FromData(d, shape...)
}
