package nn

import "math"

// Choosing Conv2d's per-example norm rule (mixed ghost clipping): a cost
// model of the three rules, whose constants were fitted by benchmark, and
// two hard limits (the materialise budget, the size of a ghost Gram).

// chooseRule returns the per-example norm rule for m examples of k rows of
// t positions each: ForceNorm when set, else the cheapest rule under the
// cost model below that respects the materialise budget (floats of stored
// gradients; ≤ 0: the default) and keeps every ghost Gram matrix below 2²²
// entries.
func (c *Conv2d) chooseRule(m, k, t, budget int) NormRule {
	switch c.ForceNorm {
	case RuleGhost, RuleMaterialize, RuleMaterializeStored:
		return c.ForceNorm
	case RuleAuto:
	default:
		shapePanic("Conv2d.Backward", "ForceNorm %v: want auto, ghost, materialize or materialize-stored", c.ForceNorm)
	}
	if budget <= 0 {
		budget = defaultMaterializeBudget
	}
	ghost, mat, store := c.ruleCosts(k, t)
	ghostOK := float64(k*t)*float64(k*t) <= 1<<22
	if m*c.Cout*c.d() <= budget && store <= mat && (!ghostOK || store <= ghost) {
		return RuleMaterializeStored
	}
	if ghostOK && ghost < mat {
		return RuleGhost
	}
	return RuleMaterialize
}

// Per-example cost model of the norm rules, in multiply-adds of one large
// float32 GEMM, for kt columns per example, d = Cin·K² and p = Cout:
//
//   - materialize-stored forms ∇W_i = dy_i·col_iᵀ by a small float32 GEMM
//     (smallGEMMCost per multiply-add) and writes p·d floats per example,
//     read back in AccumulateClipped (storedFloatCost each);
//   - materialize forms ∇W_i in float64 (float64Cost per multiply-add of a
//     small DGEMM, after converting the example's d×kt patches and p×kt
//     output gradients to float64, convertCost per value), and ghost forms
//     the two kt×kt Gram matrices by float64 SYRK (syrkCost per
//     multiply-add, kt²·n/2 of them) after the same conversions; both then
//     recompute the clipped sum as one large GEMM of kt·d·p multiply-adds;
//   - ghost's patch Gram may come from the input pixels' Gram instead
//     (ruleCosts, patchGram), when that is cheaper.
//
// The constants were fitted on this project's 2-core VM with OpenBLAS
// (BenchmarkNormRules; the rule chosen for each of its layers is the
// fastest measured): storing wins for large kt (cnn-mnist's layers), ghost
// for ScatterNet-CNN's layers (kt = 49 and 9) and late ResNet layers.
func normCosts(kt, d, p float64) (ghost, mat, store float64) {
	prod := kt * d * p
	ghost = syrkCost*kt*kt*(d+p)/2 + convertCost*(d+p)*kt + prod
	mat = float64Cost*prod + convertCost*(d+p)*kt + prod
	store = smallGEMMCost*prod + storedFloatCost*d*p
	return ghost, mat, store
}

// ruleCosts is normCosts for k rows of T positions per example, with
// ghost's patch Gram at the cost of the cheaper of its two forms. The input
// size comes from the last Forward, or (before any) is taken to be the
// square that gives T positions.
func (c *Conv2d) ruleCosts(k, t int) (ghost, mat, store float64) {
	kt, d, p := float64(k*t), float64(c.d()), float64(c.Cout)
	ghost, mat, store = normCosts(kt, d, p)
	h, w := c.inputHW(t)
	if pc, pixel := c.pixelGramCost(h, w, k, t); pixel {
		ghost += pc - (syrkCost*kt*kt*d/2 + convertCost*d*kt)
	}
	return ghost, mat, store
}

func (c *Conv2d) inputHW(t int) (h, w int) {
	if c.x != nil && len(c.x.Shape) == 4 {
		return c.x.Shape[2], c.x.Shape[3]
	}
	o := int(math.Round(math.Sqrt(float64(t))))
	h = max(1, (o-1)*c.Stride+c.K-2*c.Pad)
	return h, h
}

// pixelGramCost returns the cost (normCosts' units) of example's patch
// Gram formed from the Gram of its input pixels, and whether that is
// cheaper than forming it from the patches (see patchGram): the pixel SYRK
// over Cin, the combination of K² of its entries per Gram entry in Go
// (combineCost each) and the conversion of the input to float64.
func (c *Conv2d) pixelGramCost(h, w, k, t int) (cost float64, cheaper bool) {
	np := k * h * w
	if (np+1)*(np+1) > 1<<22 {
		return 0, false
	}
	kt, k2, cin, d := float64(k*t), float64(c.K*c.K), float64(c.Cin), float64(c.d())
	n := float64(np)
	cost = syrkCost*n*n*cin/2 + combineCost*kt*kt*k2/2 + convertCost*cin*n
	return cost, cost < syrkCost*kt*kt*d/2+convertCost*d*kt
}

const (
	smallGEMMCost   = 1.6
	storedFloatCost = 48
	syrkCost        = 3
	float64Cost     = 2.5
	convertCost     = 35
	combineCost     = 20
)

// usePixelGram reports whether patchGram forms the patch Gram of an
// example from the Gram of its input pixels (h×w input, k rows per
// example): when that is cheaper (pixelGramCost).
func (c *Conv2d) usePixelGram(h, w, k, t int) bool {
	_, cheaper := c.pixelGramCost(h, w, k, t)
	return cheaper
}
