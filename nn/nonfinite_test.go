package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"dptrain/tensor"
)

// An example whose gradient is not finite gets clip factor 0
// (dpsgd.ClipFactors) and must then contribute exactly nothing: 0·Inf is
// NaN, so AccumulateClipped must leave its rows out of every product
// (privacy review F5, appendix A4).

type nonFiniteCase struct {
	name  string
	build func(r *rand.Rand) []Layer
	in    []int // per row: C, H, W
	k     int   // rows per example
	rule  NormRule
}

func nonFiniteCases() []nonFiniteCase {
	conv := func(ws bool) func(r *rand.Rand) []Layer {
		return func(r *rand.Rand) []Layer {
			c := NewConv2d("c", 3, 5, 3, 1, 1, true, ws, r)
			for i := range c.B.Value {
				c.B.Value[i] = float32(r.NormFloat64())
			}
			return []Layer{c}
		}
	}
	cases := []nonFiniteCase{
		{name: "linear", build: func(r *rand.Rand) []Layer { return []Layer{&Flatten{}, NewLinear("l", 12, 3, true, r)} }, in: []int{12, 1, 1}, k: 1},
		{name: "linear-K2", build: func(r *rand.Rand) []Layer { return []Layer{&Flatten{}, NewLinear("l", 12, 3, true, r)} }, in: []int{12, 1, 1}, k: 2},
		{name: "groupnorm", build: func(r *rand.Rand) []Layer { return []Layer{randGN("g", 2, 4, r)} }, in: []int{4, 3, 3}, k: 1},
		{name: "residual", build: func(r *rand.Rand) []Layer {
			return []Layer{&Residual{PostReLU: true,
				Main:     []Layer{NewConv2d("a", 2, 4, 3, 2, 1, false, false, r), randGN("b", 2, 4, r), &ReLU{}, NewConv2d("c", 4, 4, 3, 1, 1, false, false, r), randGN("d", 2, 4, r)},
				Shortcut: []Layer{NewConv2d("e", 2, 4, 1, 2, 0, false, false, r), randGN("f", 2, 4, r)}}}
		}, in: []int{2, 5, 5}, k: 1},
		{name: "residual-preact-ws", build: func(r *rand.Rand) []Layer {
			return []Layer{&Residual{ShortcutOnPre: true,
				Pre:      []Layer{randGN("a", 2, 2, r), &ReLU{}},
				Main:     []Layer{NewConv2d("b", 2, 4, 3, 2, 1, false, true, r), randGN("c", 2, 4, r), &ReLU{}, NewConv2d("d", 4, 4, 3, 1, 1, false, true, r)},
				Shortcut: []Layer{NewConv2d("e", 2, 4, 1, 2, 0, false, true, r)}}}
		}, in: []int{2, 5, 5}, k: 1},
	}
	for _, rule := range []NormRule{RuleMaterializeStored, RuleGhost, RuleMaterialize} {
		for _, ws := range []bool{false, true} {
			for _, k := range []int{1, 2} {
				cases = append(cases, nonFiniteCase{name: fmt.Sprintf("conv-ws=%v-K%d", ws, k), build: conv(ws), in: []int{3, 6, 6}, k: k, rule: rule})
			}
		}
		cases = append(cases, nonFiniteCase{name: "residual", build: cases[3].build, in: cases[3].in, k: 1, rule: rule},
			nonFiniteCase{name: "residual-preact-ws", build: cases[4].build, in: cases[4].in, k: 1, rule: rule})
	}
	return cases
}

// privateGrads runs one private step of a fresh model (same seed, so the
// same parameters) and returns its per-example norms and clipped sum.
func privateGrads(tc nonFiniteCase, x, dy *tensor.Tensor, coef []float32) ([]float64, []float32) {
	m := &Model{Name: tc.name, InputShape: [3]int{tc.in[0], tc.in[1], tc.in[2]}, Layers: tc.build(rand.New(rand.NewPCG(81, 82)))}
	forceNorm(m, tc.rule)
	m.ZeroGrad()
	m.Forward(x, true)
	res := m.BackwardPerExample(dy, PerExampleOptions{Group: tc.k})
	sq := append([]float64(nil), res.SqNorms...)
	m.AccumulateClipped(coef)
	var g []float32
	for _, p := range m.Params() {
		g = append(g, p.Grad...)
	}
	return sq, g
}

// TestNonFiniteExampleContributesNothing: +Inf and NaN in one example's
// output gradient, or in its input, with that example's coefficient 0: the
// clipped sum is finite and equals the clipped sum of the batch without
// that example, for Linear, Conv2d under every rule (with and without WS,
// K = 1 and 2), GroupNorm and residual blocks. The other examples' norms do
// not change either.
func TestNonFiniteExampleContributesNothing(t *testing.T) {
	const n = 4 // examples
	for _, tc := range nonFiniteCases() {
		for _, inject := range []string{"dy+Inf", "dyNaN", "x+Inf", "xNaN"} {
			t.Run(fmt.Sprintf("%s/%s/%s", tc.name, tc.rule, inject), func(t *testing.T) {
				r := rand.New(rand.NewPCG(83, 84))
				rows := n * tc.k
				x := randTensor(r, append([]int{rows}, tc.in...)...)
				probe := &Model{Name: "probe", InputShape: [3]int{tc.in[0], tc.in[1], tc.in[2]}, Layers: tc.build(rand.New(rand.NewPCG(81, 82)))}
				dy := randTensor(r, probe.Forward(x, true).Shape...)
				coef := randCoef(r, n)
				coef[0] = 0
				bad := float32(math.Inf(1))
				if inject == "dyNaN" || inject == "xNaN" {
					bad = float32(math.NaN())
				}
				target := dy
				if inject[0] == 'x' {
					target = x
				}
				per := len(target.Data) / rows
				for a := 0; a < tc.k; a++ { // example 0: two bad entries per row
					target.Data[a*per+1] = bad
					target.Data[a*per+per-2] = -bad
				}
				sq, got := privateGrads(tc, x, dy, coef)
				wantSq, want := privateGrads(tc, x.Slice0(tc.k, rows), dy.Slice0(tc.k, rows), coef[1:])
				identical := true
				var scale float64
				for _, v := range want {
					scale = max(scale, math.Abs(float64(v)))
				}
				for i, v := range got {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("gradient[%d] = %g", i, v)
					}
					if v != want[i] {
						identical = false
						if math.Abs(float64(v-want[i])) > 1e-6*scale {
							t.Fatalf("gradient[%d] = %g, without the example %g", i, v, want[i])
						}
					}
				}
				// The other examples' norms agree to float32 rounding (a
				// batch of another size cuts other GEMMs in the forward
				// pass, whose float32 outputs can differ in the last bit).
				for j, v := range wantSq {
					if math.Abs(sq[j+1]-v) > 1e-5*v {
						t.Errorf("example %d: norm %g, without example 0 %g", j+1, sq[j+1], v)
					}
				}
				if tc.name == "linear" || tc.name == "linear-K2" {
					if !identical {
						t.Errorf("linear: clipped sum not bit-identical to the batch without the example")
					}
				}
				if !identical {
					t.Logf("equal within float32 tolerance, not bit-identical")
				}
			})
		}
	}
}
