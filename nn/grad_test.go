package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

type layerCase struct {
	name  string
	build func(r *rand.Rand) Layer
	in    []int
}

func convCase(name string, cin, cout, k, s, p int, bias, ws bool, in ...int) layerCase {
	return layerCase{name, func(r *rand.Rand) Layer {
		c := NewConv2d("c", cin, cout, k, s, p, bias, ws, r)
		if bias {
			for i := range c.B.Value {
				c.B.Value[i] = float32(r.NormFloat64())
			}
		}
		return c
	}, in}
}

func randGN(name string, g, c int, r *rand.Rand) *GroupNorm {
	n := NewGroupNorm(name, g, c, true)
	for i := range n.Gamma.Value {
		n.Gamma.Value[i] = float32(1 + 0.5*r.NormFloat64())
		n.Beta.Value[i] = float32(0.5 * r.NormFloat64())
	}
	return n
}

func layerCases() []layerCase {
	return []layerCase{
		{"linear", func(r *rand.Rand) Layer { return NewLinear("l", 5, 7, true, r) }, []int{3, 5}},
		{"linear-nobias", func(r *rand.Rand) Layer { return NewLinear("l", 4, 3, false, r) }, []int{2, 4}},
		convCase("conv-k3s1p1-bias", 2, 3, 3, 1, 1, true, false, 2, 2, 5, 6),
		convCase("conv-k3s2p1-odd", 2, 3, 3, 2, 1, false, false, 2, 2, 7, 9),
		convCase("conv-k1-direct", 3, 4, 1, 1, 0, true, false, 2, 3, 4, 5),
		convCase("conv-k1s2", 3, 4, 1, 2, 0, false, false, 2, 3, 5, 5),
		convCase("conv-k7s2p3", 1, 2, 7, 2, 3, false, false, 1, 1, 9, 9),
		convCase("conv-k8s2p3", 1, 2, 8, 2, 3, true, false, 2, 1, 10, 10),
		convCase("conv-k4s2", 2, 3, 4, 2, 0, true, false, 2, 2, 7, 7),
		convCase("conv-ws-k3s1p1-bias", 2, 3, 3, 1, 1, true, true, 2, 2, 5, 5),
		convCase("conv-ws-k3s2p1", 3, 4, 3, 2, 1, false, true, 2, 3, 7, 6),
		convCase("conv-ws-k1", 3, 4, 1, 1, 0, false, true, 2, 3, 3, 3),
		{"gn-1group", func(r *rand.Rand) Layer { return randGN("g", 1, 4, r) }, []int{2, 4, 3, 3}},
		{"gn-2groups", func(r *rand.Rand) Layer { return randGN("g", 2, 4, r) }, []int{2, 4, 3, 5}},
		{"gn-4groups", func(r *rand.Rand) Layer { return randGN("g", 4, 8, r) }, []int{2, 8, 3, 5}},
		{"standardize", func(r *rand.Rand) Layer { return statsStandardize("s") }, []int{3, 4, 2, 3}},
		{"relu", func(r *rand.Rand) Layer { return &ReLU{} }, []int{2, 3, 4, 5}},
		{"tanh", func(r *rand.Rand) Layer { return &Tanh{} }, []int{2, 3, 4, 5}},
		{"maxpool-3s2p1", func(r *rand.Rand) Layer { return NewMaxPool(3, 2, 1) }, []int{2, 2, 7, 6}},
		{"maxpool-2s1", func(r *rand.Rand) Layer { return NewMaxPool(2, 1, 0) }, []int{2, 2, 5, 5}},
		{"avgpool-3s2p1", func(r *rand.Rand) Layer { return NewAvgPool(3, 2, 1) }, []int{2, 2, 7, 6}},
		{"avgpool-2s2", func(r *rand.Rand) Layer { return NewAvgPool(2, 2, 0) }, []int{2, 2, 6, 4}},
		{"global-avgpool", func(r *rand.Rand) Layer { return &GlobalAvgPool{} }, []int{2, 3, 3, 4}},
		{"flatten", func(r *rand.Rand) Layer { return &Flatten{} }, []int{2, 3, 2, 2}},
		{"residual-basic-projection", func(r *rand.Rand) Layer {
			return &Residual{PostReLU: true,
				Main:     []Layer{NewConv2d("a", 2, 4, 3, 2, 1, false, false, r), randGN("b", 2, 4, r), &ReLU{}, NewConv2d("c", 4, 4, 3, 1, 1, false, false, r), randGN("d", 2, 4, r)},
				Shortcut: []Layer{NewConv2d("e", 2, 4, 1, 2, 0, false, false, r), randGN("f", 2, 4, r)}}
		}, []int{2, 2, 5, 5}},
		{"residual-basic-identity", func(r *rand.Rand) Layer {
			return &Residual{PostReLU: true,
				Main: []Layer{NewConv2d("a", 3, 3, 3, 1, 1, false, false, r), randGN("b", 3, 3, r), &ReLU{}, NewConv2d("c", 3, 3, 3, 1, 1, false, false, r), randGN("d", 1, 3, r)}}
		}, []int{2, 3, 4, 4}},
		{"residual-preact-projection-ws", func(r *rand.Rand) Layer {
			return &Residual{ShortcutOnPre: true,
				Pre:      []Layer{randGN("a", 2, 2, r), &ReLU{}},
				Main:     []Layer{NewConv2d("b", 2, 4, 3, 2, 1, false, true, r), randGN("c", 2, 4, r), &ReLU{}, NewConv2d("d", 4, 4, 3, 1, 1, false, true, r)},
				Shortcut: []Layer{NewConv2d("e", 2, 4, 1, 2, 0, false, true, r)}}
		}, []int{2, 2, 5, 5}},
		{"residual-preact-identity", func(r *rand.Rand) Layer {
			return &Residual{
				Pre:  []Layer{randGN("a", 1, 3, r), &ReLU{}},
				Main: []Layer{NewConv2d("b", 3, 3, 3, 1, 1, false, true, r), randGN("c", 3, 3, r), &ReLU{}, NewConv2d("d", 3, 3, 3, 1, 1, false, true, r)}}
		}, []int{2, 3, 4, 4}},
	}
}

func randF64(r *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = r.NormFloat64()
	}
	return x
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// closeEnough compares a float32 analytic value with a float64 reference.
func closeEnough(got float64, want float64, tol float64) bool {
	return math.Abs(got-want) <= tol*(1+math.Abs(want))
}

// TestLayerForwardAndGradients checks every layer's float32 forward against
// the float64 reference, and its backward (input and parameter gradients)
// against central finite differences of the float64 reference.
func TestLayerForwardAndGradients(t *testing.T) {
	for _, tc := range layerCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
			l := tc.build(r)
			x64 := randF64(r, prod(tc.in))
			x := tensorOf(x64, tc.in...)
			ps := newRefParams(l.Params())

			y := l.Forward(x, true)
			want := refForward(l, ref{x64, tc.in}, ps)
			if len(y.Data) != len(want.x) {
				t.Fatalf("forward size %v, reference %v", y.Shape, want.shape)
			}
			for i := range want.x {
				if !closeEnough(float64(y.Data[i]), want.x[i], 1e-4) {
					t.Fatalf("forward[%d] = %g, reference %g", i, y.Data[i], want.x[i])
				}
			}

			w := randF64(r, len(want.x))
			loss := func() float64 {
				out := refForward(l, ref{x64, tc.in}, ps)
				s := 0.0
				for i, v := range out.x {
					s += w[i] * v
				}
				return s
			}
			for _, p := range l.Params() {
				clear(p.Grad)
			}
			dy := tensorOf(w, y.Shape...)
			ctx := &BackwardContext{Mode: Accumulate, NeedDX: true}
			dx := l.Backward(dy, ctx)
			const h = 1e-5
			fd := func(v []float64, i int) float64 {
				old := v[i]
				v[i] = old + h
				lp := loss()
				v[i] = old - h
				lm := loss()
				v[i] = old
				return (lp - lm) / (2 * h)
			}
			for i := range x64 {
				if g := fd(x64, i); !closeEnough(float64(dx.Data[i]), g, 2e-3) {
					t.Fatalf("dx[%d] = %g, finite difference %g", i, dx.Data[i], g)
				}
			}
			for _, p := range l.Params() {
				if p.Frozen {
					continue // constants (Standardize's statistics): no gradient
				}
				for i := range p.Value {
					if g := fd(ps[p], i); !closeEnough(float64(p.Grad[i]), g, 2e-3) {
						t.Fatalf("%s grad[%d] = %g, finite difference %g", p.Name, i, p.Grad[i], g)
					}
				}
			}
		})
	}
}
