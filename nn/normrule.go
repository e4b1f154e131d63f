package nn

import (
	"fmt"
	"slices"
	"strings"
)

// NormRule names how a GradLayer computed its per-example norms in the
// last PerExample backward (GradLayer.NormMethod), or the rule forced on
// a convolution (Conv2d.ForceNorm; "" chooses by cost).
type NormRule string

// The per-example norm rules (see Conv2d for the first three).
const (
	RuleAuto              NormRule = ""                   // Conv2d.ForceNorm: choose by cost
	RuleGhost             NormRule = "ghost"              // from Gram matrices, never formed
	RuleMaterialize       NormRule = "materialize"        // formed, measured, dropped
	RuleMaterializeStored NormRule = "materialize-stored" // formed and kept for the clipped sum
	RuleDirect            NormRule = "direct"             // per-example gradients are small: formed directly
)

// ConvRules lists the rules a convolution can be forced to use.
func ConvRules() []string {
	return []string{string(RuleGhost), string(RuleMaterialize), string(RuleMaterializeStored)}
}

// ParseConvRule returns the convolution rule named s ("" or "auto": by
// cost), or an error listing the rules.
func ParseConvRule(s string) (NormRule, error) {
	if s == "" || s == "auto" {
		return RuleAuto, nil
	}
	if slices.Contains(ConvRules(), s) {
		return NormRule(s), nil
	}
	return "", fmt.Errorf("want auto or one of %s; got %q", strings.Join(ConvRules(), ", "), s)
}
