package nn

import (
	"math"

	"dptrain/internal/par"
	"dptrain/tensor"
)

// Weight standardisation of Conv2d (Qiao et al. 2019): Ŵ from W, the
// Jacobian that maps a gradient w.r.t. Ŵ to one w.r.t. W, and the exact
// correction that keeps the ghost norm exact under it (the Conv2d type
// comment gives the formula).

// WSEpsilon is the variance floor of weight standardisation.
const WSEpsilon = 1e-5

// wsRowStats are float64 sums over one row ŵ_o of the standardised weights,
// for the WS ghost correction: Σŵ², Σŵ, Σ|ŵ|.
type wsRowStats struct{ sq, sum, abs float64 }

// standardize sets wEff to Ŵ (W itself without WS) and, with WS, wsInvStd
// and wsRow to each row's 1/s_o and sums.
func (c *Conv2d) standardize() {
	if !c.WS {
		c.wEff = c.W.Value
		return
	}
	d := c.d()
	c.wEff = tensor.EnsureSlice(c.wEff, len(c.W.Value))
	c.wsInvStd = tensor.EnsureSlice(c.wsInvStd, c.Cout)
	if cap(c.wsRow) < c.Cout {
		c.wsRow = make([]wsRowStats, c.Cout)
	}
	c.wsRow = c.wsRow[:c.Cout]
	c.wsZScale = ensure64(c.wsZScale, c.Cout)
	gz := gamma(d, unit32)
	for o := 0; o < c.Cout; o++ {
		row := c.W.Value[o*d : (o+1)*d]
		var mu, v float64
		for _, x := range row {
			mu += float64(x)
		}
		mu /= float64(d)
		for _, x := range row {
			v += (float64(x) - mu) * (float64(x) - mu)
		}
		v /= float64(d)
		inv := 1 / math.Sqrt(v+WSEpsilon)
		c.wsInvStd[o] = float32(inv)
		out := c.wEff[o*d : (o+1)*d]
		var st wsRowStats
		for j, x := range row {
			w := float32((float64(x) - mu) * inv)
			out[j] = w
			st.sq += float64(w) * float64(w)
			st.sum += float64(w)
			st.abs += math.Abs(float64(w))
		}
		c.wsRow[o] = st
		c.wsZScale[o] = gz * normUpper(st.sq, d)
	}
}

// wsBackward maps a gradient g w.r.t. Ŵ to the gradient w.r.t. W, adding it
// into dst: ∂L/∂w_o = (g_o − mean(g_o) − ŵ_o·(g_o·ŵ_o)/n)/s_o (rows in
// parallel; each row's arithmetic is fixed).
func (c *Conv2d) wsBackward(dst, g []float32, add bool) {
	d := c.d()
	par.For(c.Cout, max(1, 8192/d), func(lo, hi int) {
		for o := lo; o < hi; o++ {
			c.wsBackwardRow(dst[o*d:(o+1)*d], g[o*d:(o+1)*d], o, add)
		}
	})
}

func (c *Conv2d) wsBackwardRow(out, gr []float32, o int, add bool) {
	d := c.d()
	tensor.WSRow(out, gr, c.wEff[o*d:(o+1)*d], float64(c.wsInvStd[o]), add)
}

// wsGhostSlack is the largest relative width (upper bound − estimate) of the
// WS ghost norm that is accepted; beyond it (cancellation in the WS
// correction makes the bound loose) the example's gradient is materialised
// in float64 instead.
const wsGhostSlack = 1e-3

// wsCorrection returns, for example j under weight standardisation, the
// estimate and a lower bound of Σ_o c_o/s_o², where (type comment; g_o the
// example's gradient row w.r.t. ŵ_o, n = d)
//
//	c_o = σ_o²/n + κ_o ρ_o² − 2λ_o σ_o ρ_o,
//	σ_o = 1ᵀg_o, ρ_o = ŵ_oᵀg_o, κ_o = 2/n − ‖ŵ_o‖²/n², λ_o = (1ᵀŵ_o)/n²,
//
// so that ‖∇w_o‖² = (‖g_o‖² − c_o)/s_o² exactly: with P = I − 11ᵀ/n − ŵŵᵀ/n
// (the Jacobian wsBackward applies, for the float32 ŵ, which need not have
// 1ᵀŵ = 0 or ‖ŵ‖² = n exactly), ‖Pg‖² = ‖g‖² − 2σ²/n − 2ρ²/n
// + ‖1σ/n + ŵρ/n‖² = ‖g‖² − σ²/n − (2/n − ‖ŵ‖²/n²)ρ² + 2σρ(1ᵀŵ)/n².
// Subtracting the lower bound from the ghost norm's upper bound gives an
// upper bound of ‖∇W_j‖².
//
// Error sources, all bounded:
//
//   - σ_o = Σ_s dy_os·colsum_s: colsum from patchGram, |Δ| ≤ e_A·colabs_s;
//     the float64 sum over kt products adds γ⁶⁴_{kt+2}·Σ_s|dy_os colsum_s|.
//   - ρ_o = Σ_s dy_os·z_os with z the forward output minus the bias. The
//     forward GEMM (float32, d terms) gives |ζ_os − z_os| ≤ γ³²_d·‖ŵ_o‖‖a_s‖
//   - d·2⁻¹⁴⁹; adding the bias in float32 and removing it in float64 add
//     u₃₂|y|/(1−u₃₂) + u₆₄|y − b|. ‖a_s‖ comes from Ã's diagonal.
//   - κ_o, λ_o from float64 sums over ŵ_o (γ⁶⁴_{d+1}).
//
// Given |σ − σ̃| ≤ e_σ and |ρ − ρ̃| ≤ e_ρ, the minimum of c over the box is
// at least (|σ̃| − e_σ)₊²/n + κ_lo·ρ_{lo or hi}² − 2|λ|_hi(|σ̃| + e_σ)(|ρ̃| + e_ρ),
// less 1e-14 of the magnitudes for the rounding of this float64 formula
// (a dozen operations). Error terms are doubled to cover their own rounding.
func (c *Conv2d) wsCorrection(sc *convScratch, j int, dyc []float32, ldy, k, t int, eA float64) (est, lo float64) {
	p, d := c.Cout, c.d()
	n := float64(d)
	kt := k * t
	gk := gamma(kt+2, unit64)
	gw := gamma(d+1, unit64)
	in := tensor.WSGhostInput{
		DY: dyc, LDY: ldy,
		Z: c.y.Data[j*k*p*t : (j+1)*k*p*t], ZSeg: p * t,
		P: p, K: k, T: t,
		ColSum: sc.colsum[:kt], ColAbs: sc.colabs[:kt],
		Alpha: sc.vec[:kt], // ‖a_s‖ upper bounds, left by gramInner
		Scale: c.wsZScale,  // γ³²_d·‖ŵ_o‖ (standardize)
		ZAbs:  float64(d) * tiny32,
	}
	if c.B != nil {
		in.Bias = c.B.Value
		in.CY, in.CZ = unit32/(1-unit32), unit64
	}
	if cap(sc.wsSums) < p {
		sc.wsSums = make([]tensor.WSGhostSums, p)
	}
	sums := sc.wsSums[:p]
	tensor.WSGhostRowSums(sums, in)
	var loAbs float64
	for o, sm := range sums {
		eSig := 2 * (eA*sm.SigErr + gk*sm.SigAbs)
		eRho := 2 * (sm.RhoErr + gk*sm.RhoAbs)
		inv := float64(c.wsInvStd[o])
		inv2 := inv * inv
		cEst, cLo := c.wsRow[o].correction(n, gw, sm.Sig, eSig, sm.Rho, eRho)
		est += inv2 * cEst
		v := inv2 * cLo
		if v >= 0 {
			v *= 1 - 4*unit64
		} else {
			v *= 1 + 4*unit64
		}
		lo += v
		loAbs += math.Abs(v)
	}
	return est, lo - gamma(p+1, unit64)*loAbs
}

// correction returns the estimate and a lower bound of the WS correction of
// one row (wsCorrection's c_o = σ²/n + κρ² − 2λσρ, n = d, the row's κ and λ
// from st with gw = γ⁶⁴_{d+1}, the error of st's sums), given σ within eSig
// of sg and ρ within eRho of rho: the minimum over that box, less 1e-14 of
// the magnitudes for the rounding of this float64 formula.
func (st wsRowStats) correction(n, gw, sg, eSig, rho, eRho float64) (est, lo float64) {
	w2 := st.sq / (n * n)
	kappa := 2/n - w2
	eKappa := 2 * (gw*w2 + 4*unit64*(2/n+w2))
	lam := st.sum / (n * n)
	lamHi := (math.Abs(st.sum) + gw*st.abs) / (n * n) * (1 + 4*unit64)
	est = sg*sg/n + kappa*rho*rho - 2*lam*sg*rho
	sLo, sHi := max(math.Abs(sg)-eSig, 0), math.Abs(sg)+eSig
	rLo, rHi := max(math.Abs(rho)-eRho, 0), math.Abs(rho)+eRho
	kLo := kappa - eKappa
	kr := kLo * rHi * rHi
	if kLo >= 0 {
		kr = kLo * rLo * rLo
	}
	cross := 2 * lamHi * sHi * rHi
	lo = sLo*sLo/n + kr - cross
	lo -= 1e-14 * (sHi*sHi/n + (math.Abs(kappa)+eKappa)*rHi*rHi + cross)
	return est, lo
}

// storedWSSq returns an upper bound of ‖J_ws(g)‖² = Σ_o ‖P g_o‖²/s_o², the
// squared norm of the gradient w.r.t. W whose gradient w.r.t. Ŵ is g (p×d,
// the stored rule's kept array), without forming it: per row
// ‖P g_o‖² = ‖g_o‖² − c_o exactly (wsCorrection's c_o, for the float32 ŵ_o
// and 1/s_o that wsBackward applies), with ‖g_o‖², σ_o = 1ᵀg_o and
// ρ_o = ŵ_oᵀg_o float64 sums of exact terms (tensor.WSRowStats), each within
// γ⁶⁴_d of its magnitude sum (doubled to cover that sum's own rounding).
// The bound is tight to ~1e-13 relative unless g_o lies almost entirely in
// span{1, ŵ_o}; it is never below the exact norm.
//
// A blocked array (c.storedPlan) has its rows' sums taken over lanes
// against Ŵ in the same layout (tensor.WSBlockedRowStats), each row's sum
// over Chunk/Block ≥ d terms (zero padding adds exact zeros); γ is taken
// for that many. With Block 1 (the F(2×2, 3×3) kernel's layout: each row
// its d values, permuted) the rows are summed as plain ones, against Ŵ
// permuted alike: the same sums in another order.
func (c *Conv2d) storedWSSq(sc *convScratch, g []float32) float64 {
	p, d := c.Cout, c.d()
	n := float64(d)
	if cap(sc.wsStats) < p {
		sc.wsStats = make([]tensor.WSStats, p)
	}
	stats := sc.wsStats[:p]
	terms := d
	if c.storedPlan != nil && c.storedBlk.Block > 1 {
		tensor.WSBlockedRowStats(stats, g, c.wsBlk, c.storedBlk)
		terms = c.storedBlk.Chunk / c.storedBlk.Block
	} else {
		w := c.wEff
		if c.storedPlan != nil {
			w = c.wsBlk // Block 1: each row's d values in the kernel's order, Ŵ alike
		}
		for o := range stats {
			stats[o] = tensor.WSRowStats(g[o*d:(o+1)*d], w[o*d:(o+1)*d])
		}
	}
	gd := gamma(terms, unit64)
	gw := gamma(d+1, unit64)
	var total float64
	for o, st := range stats {
		eSig := 2 * gd * st.SumAbs
		eRho := 2 * gd * st.DotAbs
		_, cLo := c.wsRow[o].correction(n, gw, st.Sum, eSig, st.Dot, eRho)
		// ‖g_o‖² ≤ SumSquaresBound; the difference rounds once, the scaling
		// by 1/s_o² (exact: the square of a float32) once more.
		q := up64(max(SumSquaresBound(st.SumSq, terms)-cLo, 0), 1)
		inv := float64(c.wsInvStd[o])
		total += up64(inv*inv*q, 1)
	}
	return up64(total*(1+gamma(p+1, unit64)), 1)
}
