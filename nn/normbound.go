package nn

import "math"

// Rounding-error bounds for per-example norms (privacy-critical).
//
// DP-SGD's sensitivity bound needs each example's clip factor
// c_i = min(1, C/(‖g_i‖ + 1e-6)) to satisfy c_i·‖g_i‖ ≤ C for the exact
// gradient g_i. So the squared norm a rule reports must never be below the
// exact one ("exact": real arithmetic on the float32 inputs x, dy, W and, with
// weight standardisation, the float32 Ŵ and 1/s that the layer uses). Each
// rule therefore reports a proven upper bound: the computed value plus a
// bound on its rounding error. The bounds rest on the standard model of
// floating-point arithmetic (IEEE round to nearest, no flush-to-zero):
// fl(a ∘ b) = (a ∘ b)(1 + δ), |δ| ≤ u, u = 2⁻²⁴ (float32) or 2⁻⁵³ (float64),
// plus an absolute error ≤ 2⁻¹⁵⁰ for a float32 product that underflows
// (float64 products of float32 values never underflow and are exact).
// From it (Higham, "Accuracy and Stability of Numerical Algorithms", §3.1):
//
//	a sum or dot product of n terms, in any order, blocked or not, with or
//	without fused multiply-adds, is within γ_n·Σ|x_i y_i| of the exact value,
//	γ_n = n·u/(1 − n·u).
//
// So no assumption is made about how OpenBLAS orders its sums.
//
// Ghost norm. For one example, A ∈ ℝ^{d×T} holds the patches a_s and
// G ∈ ℝ^{p×T} the output gradients g_s; ‖∇W‖²_F = ⟨AᵀA, GᵀG⟩ = Σ_st A_st G_st
// (A_st = a_s·a_t, G_st = g_s·g_t). The computed Grams Ã, G̃ satisfy
// |ΔA_st| = |Ã_st − A_st| ≤ e_A·Σ_r|a_rs||a_rt| ≤ e_A·α_s α_t (Cauchy–Schwarz,
// α_s = ‖a_s‖) and likewise |ΔG_st| ≤ e_G·β_s β_t. Since
// A_st G_st = Ã_st G̃_st − ΔA_st G̃_st − Ã_st ΔG_st + ΔA_st ΔG_st,
//
//	|⟨A,G⟩ − ⟨Ã,G̃⟩| ≤ e_A·Σ_st α_sα_t|G̃_st| + e_G·Σ_st|Ã_st|β_sβ_t
//	                 + e_A e_G·(Σ_s α_s β_s)²,
//
// and the float64 evaluation of ⟨Ã,G̃⟩ (a product and at most 2T+1 additions
// per term) adds γ⁶⁴_{2T+2}·Σ_st|Ã_st G̃_st|. α_s and β_s are bounded from the
// computed diagonals: Ã_ss ≥ (1 − e_A)α_s² (a sum of squares), so
// α_s ≤ √(Ã_ss/(1 − e_A)). All of it is one O(T²) float64 loop (gramInner).
// The Grams themselves are formed in float64 (e_A, e_G ≈ d·2⁻⁵³, p·2⁻⁵³;
// see Conv2d.patchGram), which makes the bound ~1e-13 relative on ordinary
// inputs, and ≤ 1e-7 relative even when gradients cancel across positions
// (the review's A3b input): with float32 Grams, e_A = γ³²_d is ≥ 3e-5 for
// d ≥ 576, and the bound would overstate norms by 1e-4 to 1e-2.
//
// The bound computed in floating point is itself rounded: the error terms
// are doubled (their own relative rounding error is ≤ γ⁶⁴_{4T} ≪ 1), and the
// final sum is scaled up by (1 + 4u₆₄).
//
// The materialise rule, weight standardisation and the linear layer's ghost
// norm are bounded the same way; their derivations sit next to the code
// (Conv2d.materialize64, Conv2d.wsCorrection, Linear.Backward).

const (
	unit32 = 0x1p-24 // unit roundoff of float32
	unit64 = 0x1p-53 // unit roundoff of float64
	// tiny32 bounds the absolute error of one float32 product that
	// underflows (half the smallest subnormal, 2⁻¹⁵⁰), doubled.
	tiny32 = 0x1p-149
)

// gamma returns γ_n = n·u/(1 − n·u) for n rounded operations of unit
// roundoff u (+Inf when n·u ≥ 1/2: no bound).
func gamma(n int, u float64) float64 {
	nu := float64(n) * u
	if nu >= 0.5 {
		return math.Inf(1)
	}
	return nu / (1 - nu)
}

// up64 returns x·(1 + k·2⁻⁵³) rounded up enough to bound k float64 roundings
// of a non-negative x.
func up64(x float64, k int) float64 { return x * (1 + float64(k+1)*unit64) }

// SumSquaresBound returns an upper bound of the exact sum of n squares of
// float32 values, given their float64 sum s (each square taken in float64,
// where it is exact; the terms added in any order): s scaled up by the
// rounding bound γ⁶⁴ of the sum and of the scaling itself. A layer that
// keeps its per-example gradients in float32 (RuleDirect) reports this of
// their sum of squares: exact for what AccumulateClipped adds, and never
// below it.
func SumSquaresBound(s float64, n int) float64 { return up64(s*(1+gamma(n+1, unit64)), 1) }

// normUpper returns an upper bound of √s for s ≥ 0 computed as a float64
// sum of n non-negative terms (relative error ≤ γ⁶⁴_n).
func normUpper(s float64, n int) float64 {
	return up64(math.Sqrt(max(s, 0)*(1+gamma(n+1, unit64))), 2)
}

// gramInner returns ⟨Ã, G̃⟩ and an upper bound of the exact ⟨A, G⟩ (see
// the file comment), for n×n Grams whose upper triangles (s ≤ t) are stored
// row-major in ga and gg with stride n, and whose entries are within
// eA·α_sα_t and eG·β_sβ_t of the exact ones (α_s² ≈ Ã_ss, β_s² ≈ G̃_ss).
// ga == nil stands for the all-ones matrix (exact: eA is ignored), the Gram
// of a bias's "input". scratch holds at least 2n floats.
func gramInner(ga, gg []float64, n int, eA, eG float64, scratch []float64) (est, upper float64) {
	if ga == nil {
		eA = 0
	}
	alpha, beta := scratch[:n], scratch[n:2*n]
	for s := 0; s < n; s++ {
		a := 1.0
		if ga != nil {
			a = math.Sqrt(max(ga[s*n+s], 0)/(1-eA)) * (1 + 4*unit64)
		}
		alpha[s] = a
		beta[s] = math.Sqrt(max(gg[s*n+s], 0)/(1-eG)) * (1 + 4*unit64)
	}
	var sum, abs, e1, e2, ab float64
	for s := 0; s < n; s++ {
		gr := gg[s*n : (s+1)*n]
		as, bs := alpha[s], beta[s]
		aSS := 1.0
		if ga != nil {
			aSS = ga[s*n+s]
		}
		// diagonal term once, the off-diagonal ones twice (symmetry).
		rs := aSS * gr[s]
		ra := math.Abs(rs)
		r1 := as * math.Abs(gr[s])
		r2 := math.Abs(aSS) * bs
		var os, oa, o1, o2 float64
		if ga != nil {
			ar := ga[s*n : (s+1)*n]
			for t := s + 1; t < n; t++ {
				p := ar[t] * gr[t]
				os += p
				oa += math.Abs(p)
				o1 += alpha[t] * math.Abs(gr[t])
				o2 += math.Abs(ar[t]) * beta[t]
			}
		} else {
			for t := s + 1; t < n; t++ {
				os += gr[t]
				oa += math.Abs(gr[t])
				o1 += math.Abs(gr[t])
				o2 += beta[t]
			}
		}
		sum += rs + 2*os
		abs += ra + 2*oa
		e1 += as * (r1 + 2*o1)
		e2 += bs * (r2 + 2*o2)
		ab += as * bs
	}
	e := eA*e1 + eG*e2 + eA*eG*ab*ab + gamma(2*n+2, unit64)*abs
	return sum, up64(max(sum+2*e, 0), 4)
}
