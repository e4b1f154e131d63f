package nn

import "fmt"

// NormRule names how a layer computes its per-example squared gradient
// norms in PerExample mode (GradLayer.NormMethod), or which rule a
// convolution is forced to use (Conv2d.ForceNorm).
type NormRule uint8

const (
	// RuleAuto is the zero value: as Conv2d.ForceNorm, the rule is chosen
	// per call by cost; as a NormMethod, no PerExample backward has run yet.
	RuleAuto NormRule = iota
	// RuleGhost: norms from the Gram matrices of the layer's inputs and
	// output gradients, without forming the per-example gradient (Linear,
	// and Conv2d when its positions per example are few).
	RuleGhost
	// RuleMaterialize: each example's gradient is formed (float64) to take
	// its norm and dropped; AccumulateClipped recomputes the clipped sum.
	RuleMaterialize
	// RuleMaterializeStored: each example's gradient is formed (float32)
	// and kept; AccumulateClipped sums the kept gradients.
	RuleMaterializeStored
	// RuleDirect: the per-example gradients are small enough to be kept
	// always (GroupNorm's per-channel affine parameters).
	RuleDirect
)

var normRuleNames = [...]string{
	RuleAuto:              "auto",
	RuleGhost:             "ghost",
	RuleMaterialize:       "materialize",
	RuleMaterializeStored: "materialize-stored",
	RuleDirect:            "direct",
}

// String returns the rule's name: "auto", "ghost", "materialize",
// "materialize-stored" or "direct".
func (r NormRule) String() string {
	if int(r) < len(normRuleNames) {
		return normRuleNames[r]
	}
	return fmt.Sprintf("NormRule(%d)", uint8(r))
}

// ParseNormRule returns the rule named s (a name String returns; "" also
// means RuleAuto).
func ParseNormRule(s string) (NormRule, error) {
	if s == "" {
		return RuleAuto, nil
	}
	for r, name := range normRuleNames {
		if s == name {
			return NormRule(r), nil
		}
	}
	return RuleAuto, fmt.Errorf("nn: norm rule %q: want auto, ghost, materialize, materialize-stored or direct", s)
}
