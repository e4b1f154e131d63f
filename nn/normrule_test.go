package nn

import (
	"math/rand/v2"
	"testing"
)

// TestChooseRule pins the per-example norm rule picked for the layers
// that BenchmarkNormRules timed (the fastest or within noise of it there),
// and the two hard limits: nothing is stored beyond the budget, and no
// ghost Gram matrix exceeds 2²² entries.
func TestChooseRule(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		name                      string
		cin, cout, k, t, group, m int
		budget                    int
		want                      NormRule
	}{
		{"scatternet-conv2 (kt=9)", 64, 64, 3, 9, 1, 512, 0, RuleGhost},
		{"scatternet-conv1 (kt=49)", 81, 64, 3, 49, 1, 512, 0, RuleGhost},
		{"cnn-mnist-conv1 (kt=196)", 1, 16, 8, 196, 1, 512, 0, RuleMaterializeStored},
		{"resnet 128 at 16×16", 128, 128, 3, 256, 1, 128, 0, RuleMaterializeStored},
		{"resnet 256 at 8×8", 256, 256, 3, 64, 1, 128, 0, RuleGhost},
		// not stored beyond the budget; the float64 materialise rule is
		// slower than the pixel-Gram ghost rule here (BenchmarkNormRules:
		// ghost 440–523, materialize 345–399 examples/s).
		{"resnet 128 at 16×16, budget 1", 128, 128, 3, 256, 1, 128, 1, RuleGhost},
		{"resnet 64 at 112×112: Gram too large", 64, 64, 3, 112 * 112, 1, 16, 1, RuleMaterialize},
		{"multiplicity 4 widens kt", 64, 64, 3, 9, 4, 128, 0, RuleGhost},
	} {
		c := NewConv2d("c", tc.cin, tc.cout, tc.k, 1, tc.k/2, true, false, r)
		if got := c.chooseRule(tc.m, tc.group, tc.t, tc.budget); got != tc.want {
			g, mat, st := normCosts(float64(tc.group*tc.t), float64(c.d()), float64(tc.cout))
			t.Errorf("%s: chose %s, want %s (costs ghost %.3g, materialize %.3g, stored %.3g)", tc.name, got, tc.want, g, mat, st)
		}
	}
}

// TestNormRuleNames: String gives the names the rules had as strings, and
// ParseNormRule inverts it ("" is the automatic choice; other names are
// errors).
func TestNormRuleNames(t *testing.T) {
	for rule, name := range map[NormRule]string{RuleAuto: "auto", RuleGhost: "ghost", RuleMaterialize: "materialize", RuleMaterializeStored: "materialize-stored", RuleDirect: "direct"} {
		if got := rule.String(); got != name {
			t.Errorf("%d.String() = %q, want %q", rule, got, name)
		}
		if got, err := ParseNormRule(name); err != nil || got != rule {
			t.Errorf("ParseNormRule(%q) = %v, %v", name, got, err)
		}
	}
	if got, err := ParseNormRule(""); err != nil || got != RuleAuto {
		t.Errorf(`ParseNormRule("") = %v, %v`, got, err)
	}
	if _, err := ParseNormRule("Ghost"); err == nil {
		t.Error(`ParseNormRule("Ghost") accepted`)
	}
	if got := NormRule(9).String(); got != "NormRule(9)" {
		t.Errorf("NormRule(9).String() = %q", got)
	}
	c := NewConv2d("c", 2, 3, 3, 1, 1, true, false, rand.New(rand.NewPCG(1, 2)))
	c.ForceNorm = RuleDirect
	defer func() {
		if _, ok := recover().(*ShapeError); !ok {
			t.Error("ForceNorm = RuleDirect on a convolution: want a *ShapeError panic")
		}
	}()
	c.chooseRule(4, 1, 9, 0)
}
