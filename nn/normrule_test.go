package nn

import (
	"math/rand/v2"
	"testing"
)

// TestChooseMethod pins the per-example norm rule picked for the layers
// that BenchmarkNormRules timed (the fastest or within noise of it there),
// and the two hard limits: nothing is stored beyond the budget, and no
// ghost Gram matrix exceeds 2²² entries.
func TestChooseMethod(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		name                      string
		cin, cout, k, t, group, m int
		budget                    int
		want                      string
	}{
		{"scatternet-conv2 (kt=9)", 64, 64, 3, 9, 1, 512, 0, "ghost"},
		{"scatternet-conv1 (kt=49)", 81, 64, 3, 49, 1, 512, 0, "ghost"},
		{"cnn-mnist-conv1 (kt=196)", 1, 16, 8, 196, 1, 512, 0, "materialize-stored"},
		{"resnet 128 at 16×16", 128, 128, 3, 256, 1, 128, 0, "materialize-stored"},
		{"resnet 256 at 8×8", 256, 256, 3, 64, 1, 128, 0, "ghost"},
		// not stored beyond the budget; the float64 materialise rule is
		// slower than the pixel-Gram ghost rule here (BenchmarkNormRules:
		// ghost 440–523, materialize 345–399 examples/s).
		{"resnet 128 at 16×16, budget 1", 128, 128, 3, 256, 1, 128, 1, "ghost"},
		{"resnet 64 at 112×112: Gram too large", 64, 64, 3, 112 * 112, 1, 16, 1, "materialize"},
		{"multiplicity 4 widens kt", 64, 64, 3, 9, 4, 128, 0, "ghost"},
	} {
		c := NewConv2d("c", tc.cin, tc.cout, tc.k, 1, tc.k/2, true, false, r)
		if got := c.chooseMethod(tc.m, tc.group, tc.t, tc.budget); string(got) != tc.want {
			g, mat, st := normCosts(float64(tc.group*tc.t), float64(c.d()), float64(tc.cout))
			t.Errorf("%s: chose %s, want %s (costs ghost %.3g, materialize %.3g, stored %.3g)", tc.name, got, tc.want, g, mat, st)
		}
	}
}
