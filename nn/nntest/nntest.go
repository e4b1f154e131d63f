package nntest

import (
	"math"
	"math/rand/v2"
	"slices"

	"dptrain/nn"
	"dptrain/tensor"
)

// T is the part of testing.TB the checks use (a *testing.T or
// *testing.B, or a recorder in a test of a test).
type T interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Reference is a layer's forward pass in float64, written from its
// definition and sharing no code with the layer: x has the input's shape
// (row-major), params the layer's parameters in the order of Params (the
// finite differences perturb them in place). It returns the output,
// row-major.
type Reference func(x []float64, params [][]float64) []float64

// Tolerances (relative; see the package comment).
const (
	refForwardTol = 1e-4
	refStep       = 1e-5
	refGradTol    = 2e-3
	selfStep      = 1e-3
	selfGradTol   = 1e-2
)

// CheckLayer checks l in Accumulate mode on a random input of shape in
// (batch first; inputs, output gradients drawn from r):
//
//   - Forward leaves x unchanged and returns finite values, equal to ref's
//     to a relative 1e-4;
//   - Backward with NeedDX leaves dy unchanged and returns ∂L/∂x (L = Σ
//     dy·y) with x's size; without NeedDX it returns nil;
//   - Backward adds to Param.Grad (a second pass doubles it, with or
//     without NeedDX) and leaves frozen parameters' gradients at 0;
//   - ∂L/∂x and every non-frozen parameter's gradient agree with central
//     finite differences of L: of ref (h = 1e-5, a relative 2e-3), or,
//     when ref is nil, of the layer's own float32 Forward (h = 1e-3, a
//     relative 1e-2), skipping coordinates with a kink within the step
//     (the one-sided differences disagree: ReLU at 0, a max-pooling tie)
//     and failing when more than a quarter of a tensor's are skipped.
//
// Every coordinate costs two forward passes: use small layers.
func CheckLayer(t T, l nn.Layer, in []int, ref Reference, r *rand.Rand) {
	t.Helper()
	name := l.Describe()
	x64 := randoms(r, numel(in))
	x := fromF64(x64, in...)
	ps := l.Params()
	p64 := make([][]float64, len(ps))
	for i, p := range ps {
		p64[i] = toF64(p.Value)
	}
	y := l.Forward(x, true)
	if !slices.Equal(x.Data, toF32(x64)) {
		t.Errorf("%s: Forward modified its input", name)
	}
	for i, v := range y.Data {
		if !finite(float64(v)) {
			t.Fatalf("%s: forward[%d] = %g on a finite input", name, i, v)
		}
	}
	if ref != nil {
		want := ref(x64, p64)
		if len(y.Data) != len(want) {
			t.Fatalf("%s: forward: %d outputs (shape %v), reference %d", name, len(y.Data), y.Shape, len(want))
		}
		for i, w := range want {
			if !near(float64(y.Data[i]), w, refForwardTol) {
				t.Fatalf("%s: forward[%d] = %g, reference %g", name, i, y.Data[i], w)
			}
		}
	}
	w := randoms(r, len(y.Data))
	dy := fromF64(w, y.Shape...)
	g := checkBackward(t, l, x, dy)

	// at(i) returns the finite differences of L in the coordinates of x
	// (i < 0) or of parameter i.
	var at func(i int) func(int) (float64, bool)
	tol := selfGradTol
	if ref != nil {
		tol = refGradTol
		fd := referenceFD(ref, x64, p64, w)
		at = func(i int) func(int) (float64, bool) {
			if i < 0 {
				return fd(x64)
			}
			return fd(p64[i])
		}
	} else {
		fd := selfFD(l, x, w)
		at = func(i int) func(int) (float64, bool) {
			if i < 0 {
				return fd(x.Data)
			}
			return fd(ps[i].Value)
		}
	}
	checkFD(t, name+": dx", g.dx, at(-1), tol)
	for i, p := range ps {
		if !p.Frozen {
			checkFD(t, name+": "+p.Name+" gradient", g.params[i], at(i), tol)
		}
	}
}

type layerGrads struct {
	dx     []float32
	params [][]float32 // indexed like Params()
}

// checkBackward runs Backward twice (with and without NeedDX), checks the
// ownership rules, and returns the gradients of one pass.
func checkBackward(t T, l nn.Layer, x, dy *tensor.Tensor) layerGrads {
	t.Helper()
	name := l.Describe()
	ps := l.Params()
	for _, p := range ps {
		clear(p.Grad)
	}
	dy0 := slices.Clone(dy.Data)
	dx := l.Backward(dy, &nn.BackwardContext{Mode: nn.Accumulate, NeedDX: true})
	if !slices.Equal(dy.Data, dy0) {
		t.Errorf("%s: Backward modified dy", name)
	}
	if dx == nil || len(dx.Data) != len(x.Data) {
		t.Fatalf("%s: Backward with NeedDX returned %v, want %d input gradients", name, shapeOf(dx), len(x.Data))
	}
	g := layerGrads{dx: slices.Clone(dx.Data)}
	for _, p := range ps {
		g.params = append(g.params, slices.Clone(p.Grad))
	}
	l.Forward(x, true)
	if got := l.Backward(dy, &nn.BackwardContext{Mode: nn.Accumulate}); got != nil {
		t.Errorf("%s: Backward without NeedDX returned an input gradient", name)
	}
	for i, p := range ps {
		if p.Frozen {
			if j := slices.IndexFunc(p.Grad, func(v float32) bool { return v != 0 }); j >= 0 {
				t.Errorf("%s: frozen %s got gradient[%d] = %g", name, p.Name, j, p.Grad[j])
			}
			continue
		}
		var scale float64
		for _, v := range g.params[i] {
			scale = max(scale, math.Abs(float64(v)))
		}
		for j, v := range p.Grad {
			if want := 2 * float64(g.params[i][j]); math.Abs(float64(v)-want) > 1e-5*scale {
				t.Errorf("%s: %s gradient[%d] = %g after two backward passes, want twice %g (Backward adds to Param.Grad, the same with or without NeedDX)", name, p.Name, j, v, g.params[i][j])
				break
			}
		}
	}
	return g
}

// referenceFD returns, for a vector v that ref reads (x or one of params),
// the central finite difference of L = Σ w·ref(x, params) in coordinate i
// of v.
func referenceFD(ref Reference, x []float64, params [][]float64, w []float64) func(v []float64) func(int) (float64, bool) {
	loss := func() float64 {
		s := 0.0
		for i, v := range ref(x, params) {
			s += w[i] * v
		}
		return s
	}
	return func(v []float64) func(int) (float64, bool) {
		return func(i int) (float64, bool) {
			old := v[i]
			v[i] = old + refStep
			lp := loss()
			v[i] = old - refStep
			lm := loss()
			v[i] = old
			return (lp - lm) / (2 * refStep), true
		}
	}
}

// selfFD returns, for a float32 vector v that l reads (x.Data or a
// parameter's Value), the central finite difference of L = Σ w·Forward(x)
// in coordinate i of v, and whether L is smooth there at the scale of the
// step (its one-sided differences agree).
func selfFD(l nn.Layer, x *tensor.Tensor, w []float64) func(v []float32) func(int) (float64, bool) {
	loss := func() float64 {
		s := 0.0
		for i, v := range l.Forward(x, true).Data {
			s += w[i] * float64(v)
		}
		return s
	}
	l0 := loss()
	return func(v []float32) func(int) (float64, bool) {
		return func(i int) (float64, bool) {
			old := v[i]
			v[i] = float32(float64(old) + selfStep)
			hp := float64(v[i]) - float64(old)
			lp := loss()
			v[i] = float32(float64(old) - selfStep)
			hm := float64(old) - float64(v[i])
			lm := loss()
			v[i] = old
			d := (lp - lm) / (hp + hm)
			dp, dm := (lp-l0)/hp, (l0-lm)/hm
			return d, math.Abs(dp-dm) <= selfGradTol*(1+math.Abs(d))
		}
	}
}

// checkFD compares got[i] with fd(i) for every i, skipping the coordinates
// where fd reports a kink and failing when they are more than a quarter.
func checkFD(t T, what string, got []float32, fd func(int) (float64, bool), tol float64) {
	t.Helper()
	skipped := 0
	for i := range got {
		d, smooth := fd(i)
		if !smooth {
			skipped++
			continue
		}
		if !near(float64(got[i]), d, tol) {
			t.Errorf("%s[%d] = %g, finite difference %g", what, i, got[i], d)
			return
		}
	}
	if skipped > 0 && 4*skipped > len(got) {
		t.Errorf("%s: %d of %d coordinates skipped (a kink within the finite-difference step): give a Reference", what, skipped, len(got))
	}
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol*(1+math.Abs(want)) }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

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

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func fromF64(v []float64, shape ...int) *tensor.Tensor {
	if numel(shape) != len(v) {
		panic(&tensor.ShapeError{Op: "nntest", Msg: "values do not fill the shape"})
	}
	return tensor.FromData(toF32(v), shape...)
}

func shapeOf(t *tensor.Tensor) any {
	if t == nil {
		return nil
	}
	return t.Shape
}
