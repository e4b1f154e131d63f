package accounting

import (
	"math"

	"dptrain/internal/gauss"
)

// This file holds the Rényi-DP arithmetic of the Poisson-subsampled Gaussian
// mechanism (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the
// Sampled Gaussian Mechanism", §3) and the RDP → (ε, δ) conversions.
//
// For sampling rate q and noise multiplier σ the RDP at order α is
// log(A_α)/(α−1) with A_α = E_{z∼μ0}[(μ(z)/μ0(z))^α], μ0 = N(0, σ²),
// μ = (1−q)μ0 + q·N(1, σ²).
//
// Integer α: A_α = Σ_{i=0..α} C(α,i) (1−q)^{α−i} q^i exp((i²−i)/(2σ²)),
// every term positive; we sum A_α − 1 (the terms i ≥ 2 less their
// weights, also positive) in log space: exact up to rounding, also at large
// σ where A_α − 1 is below the ulp of 1 (dp_accounting sums A_α, which there
// rounds to 1 or just below it: ε = 0 at any δ, no guarantee).
//
// Fractional α: A_α splits at z0 = σ² log(1/q − 1) + 1/2 into two
// alternating binomial series with erfc factors (MTZ19 §3.3). CHOICE: like
// dp_accounting since 2024 (and unlike Opacus), we add the ABSOLUTE values of
// the terms, stop once both series decrease and their newest terms are
// e^-30 below the running total, and give up (RDP = +Inf, the order is then
// never chosen) after 1000 terms. Why: (1) the sum of absolute values is an
// upper bound on A_α, so the reported ε stays a valid (if up to ~0.3%
// looser) guarantee even where the signed series would suffer cancellation;
// (2) it reproduces dp_accounting, the reference users and our tests
// compare against (testdata/accounting.json), to ~1e-9 instead of
// "slightly lower by up to 0.3%". The exact signed series is kept in
// logAFracSigned for tests that check the bound and its size. Where the
// series total is rounding noise (log A_α < fracRoundoff, huge σ) the
// bound from the next integer order replaces it.
//
// σ² is never formed (it overflows beyond 1.3e154 and underflows below
// 1e-162): x/(2σ²) is computed as x/(2σ)/σ. With these, every finite σ
// gives RDP values in (0, +Inf], never NaN or 0; they agree with
// dp_accounting to ~1e-9 relative (exactly where it has no cancellation).

// maxFracTerms is dp_accounting's _MAX_STEPS_LOG_A_FRAC.
const maxFracTerms = 1000

// poissonGaussianRDP writes into dst[k] the RDP at orders[k] of one step of
// the Poisson-subsampled Gaussian mechanism (q in (0, 1], σ > 0).
func poissonGaussianRDP(dst, orders []float64, q, sigma float64) {
	for k, a := range orders {
		var r float64
		switch {
		case math.IsInf(a, 1):
			r = math.Inf(1)
		case q == 1:
			r = gaussianRDPAt(a, sigma)
		case a == math.Trunc(a):
			r = logAInt(q, sigma, int(a)) / (a - 1)
		default:
			r = logAFracBounded(q, sigma, a) / (a - 1)
		}
		dst[k] = roundUpTiny(r)
	}
}

// gaussianRDP writes into dst the RDP of the (unsampled) Gaussian mechanism.
func gaussianRDP(dst, orders []float64, sigma float64) {
	for k, a := range orders {
		dst[k] = roundUpTiny(gaussianRDPAt(a, sigma))
	}
}

// roundUpTiny rounds an RDP value in [0, MinNormal) one ulp up. Every
// event of this package has RDP > 0 at finite σ, but for σ ≳ 1e154 the
// value underflows to a subnormal (rounded to nearest, possibly down) or to
// 0, and an RDP of 0 would give ε = 0 at any δ; one ulp up keeps the value
// an upper bound (ε > 0 for δ below about √r ≈ 1e-162).
func roundUpTiny(r float64) float64 {
	if r >= 0 && r < minNormal {
		return math.Nextafter(r, math.Inf(1))
	}
	return r
}

// minNormal is the smallest positive normal float64.
const minNormal = 2.2250738585072014e-308

// gaussianRDPAt returns α/(2σ²). Like every σ² of this package it is
// divided out one σ at a time: σ·σ overflows for σ > 1.3e154 and
// underflows to 0 for σ < 1e-162 (0/0 = NaN in the (i²−i)/(2σ²) terms
// below); (α/(2σ))/σ is 0 or +Inf there, as it should be.
func gaussianRDPAt(alpha, sigma float64) float64 {
	return alpha / (2 * sigma) / sigma
}

// overTwoVar returns x/(2σ²) without forming σ² (0 for x = 0 at any σ).
func overTwoVar(x, sigma float64) float64 {
	if x == 0 {
		return 0
	}
	return x / (2 * sigma) / sigma
}

// logExpm1OverTwoVar returns log(e^{x/(2σ²)} − 1) for x > 0, also where
// x/(2σ²) is subnormal or 0 in floating point (σ ≳ 1e154), from its
// logarithm.
func logExpm1OverTwoVar(x, sigma float64) float64 {
	if c := overTwoVar(x, sigma); c >= minNormal {
		return logExpm1(c)
	}
	// c < 2.2e-308: log(e^c − 1) = log c + c/2 + …, and c/2 is below
	// any ulp of log c.
	return math.Log(x) - math.Ln2 - 2*math.Log(sigma)
}

// logAInt returns log(A_α) for integer α ≥ 2 and 0 < q < 1. The binomial
// weights w_i = C(α,i)(1−q)^{α−i}q^i sum to 1, so
// A_α − 1 = Σ_{i≥2} w_i·(e^{(i²−i)/(2σ²)} − 1), a sum of positive terms: it
// is summed in log space and log A_α = log1p(A_α − 1). Summing A_α itself
// would lose A_α − 1 ≈ C(α,2)q²/σ² below 1e-16 (σ ≳ 1e6 at q = 0.01)
// and could round to 1 or just below it, i.e. RDP 0 and ε = 0 at any δ,
// which is no guarantee.
func logAInt(q, sigma float64, alpha int) float64 {
	logQ, log1mQ := math.Log(q), math.Log1p(-q)
	lfA := logFactorial(alpha)
	logAm1 := math.Inf(-1)
	for i := 2; i <= alpha; i++ {
		fi := float64(i)
		logCoef := lfA - logFactorial(i) - logFactorial(alpha-i) + fi*logQ + float64(alpha-i)*log1mQ
		logAm1 = logAdd(logAm1, logCoef+logExpm1OverTwoVar(fi*fi-fi, sigma))
	}
	return logAdd(0, logAm1)
}

// logExpm1 returns log(e^c − 1) for c ≥ 0 (−Inf at 0, +Inf at +Inf).
func logExpm1(c float64) float64 {
	if c > 1 {
		return c + math.Log1p(-math.Exp(-c))
	}
	return math.Log(math.Expm1(c))
}

// fracRoundoff is the log A_α below which the fractional-order series is
// not trusted: its total is a sum of terms of size up to 1 and is known to
// a few ulp of 1 per term (up to maxFracTerms), so below this a log A_α of
// 1e-17 may come out as −3e-17, i.e. a negative RDP and ε = 0 at any δ.
const fracRoundoff = 1e-10

// logAFracBounded is logAFrac where it is reliable (≥ fracRoundoff: all
// of testdata/accounting.json is far above; +Inf where the series does not
// converge, as in dp_accounting), and otherwise the bound
// that RDP is non-decreasing in α gives from the next integer order
// (computed without cancellation): log A_α = (α−1)·RDP(α) ≤
// (α−1)/(⌈α⌉−1)·log A_⌈α⌉.
func logAFracBounded(q, sigma, alpha float64) float64 {
	if l := logAFrac(q, sigma, alpha); l >= fracRoundoff {
		return l
	}
	c := math.Ceil(alpha)
	return (alpha - 1) / (c - 1) * logAInt(q, sigma, int(c))
}

// logAFrac returns dp_accounting's upper bound on log(A_α) for fractional
// α > 1 and 0 < q < 1 (absolute values of the series terms; see the file
// comment), or +Inf when the series has not converged after maxFracTerms.
func logAFrac(q, sigma, alpha float64) float64 {
	return logAFracSeries(q, sigma, alpha, false)
}

// logAFracSigned returns log(A_α) from the signed (exact) series, as Opacus
// and dp_accounting before 2024 compute it. Used by tests only.
func logAFracSigned(q, sigma, alpha float64) float64 {
	return logAFracSeries(q, sigma, alpha, true)
}

func logAFracSeries(q, sigma, alpha float64, signed bool) float64 {
	logQ, log1mQ := math.Log(q), math.Log1p(-q)
	// The series splits at z0 = σ²·log(1/q − 1) + 1/2; its erfc arguments
	// (i − z0)/(√2σ) and (z0 − j)/(√2σ) are formed as (i − 1/2)/(√2σ) −
	// c and c − (j − 1/2)/(√2σ), c = σ·log(1/q − 1)/√2, so that no σ²
	// overflows (for q = 1/2 it would be Inf·0 = NaN).
	c := sigma * math.Log(1/q-1) / math.Sqrt2
	sq2s := math.Sqrt2 * sigma
	const logHalf = -math.Ln2

	// Signed sums are kept as (positive part, negative part) in log space.
	a0p, a0n := math.Inf(-1), math.Inf(-1)
	a1p, a1n := math.Inf(-1), math.Inf(-1)
	last0, last1 := math.Inf(-1), math.Inf(-1)
	logCoef := 0.0 // log|C(α, i)|, updated by recursion
	coefSign := 1.0
	for i := range maxFracTerms {
		fi := float64(i)
		if i > 0 {
			// C(α, i) = C(α, i−1)·(α−i+1)/i
			f := alpha - fi + 1
			logCoef += math.Log(math.Abs(f)) - math.Log(fi)
			if f < 0 {
				coefSign = -coefSign
			}
		}
		j := alpha - fi
		logT0 := logCoef + fi*logQ + j*log1mQ
		logT1 := logCoef + j*logQ + fi*log1mQ
		logE0 := logHalf + gauss.LogErfc((fi-0.5)/sq2s-c)
		logE1 := logHalf + gauss.LogErfc(c-(j-0.5)/sq2s)
		s0 := logT0 + overTwoVar(fi*fi-fi, sigma) + logE0
		s1 := logT1 + overTwoVar(j*j-j, sigma) + logE1
		if math.IsNaN(s0) || math.IsNaN(s1) {
			// Inf·0 in a term: for σ ≲ 1e-150 the exponent and the erfc
			// factor are +Inf and −Inf in floating point. Give up as for
			// a series that does not converge (the order is not chosen).
			return math.Inf(1)
		}
		if signed && coefSign < 0 {
			a0n, a1n = logAdd(a0n, s0), logAdd(a1n, s1)
		} else {
			a0p, a1p = logAdd(a0p, s0), logAdd(a1p, s1)
		}
		var total float64
		if signed {
			total = logSub(logAdd(a0p, a1p), logAdd(a0n, a1n))
		} else {
			total = logAdd(a0p, a1p)
		}
		if s0 < last0 && s1 < last1 && math.Max(s0, s1) < total-30 {
			return total
		}
		last0, last1 = s0, s1
	}
	return math.Inf(1)
}

// logSub returns log(exp(a) − exp(b)) for a ≥ b (−Inf when equal).
func logSub(a, b float64) float64 {
	if math.IsInf(b, -1) {
		return a
	}
	if b >= a {
		return math.Inf(-1)
	}
	return a + math.Log1p(-math.Exp(b-a))
}

// rdpToEpsilon converts RDP values to ε for δ with the improved conversion
// ε = r + log(1 − 1/α) − log(δα)/(α − 1) (Balle et al. 2020, Prop. 12 of
// Canonne-Kamath-Steinke 2020), used for α > 1.01 as in dp_accounting, or 0
// when δ² + e^{−r} > 1 (the KL bound δ ≤ sqrt(1 − e^{−KL}) already holds).
// It returns the smallest ε and the order achieving it.
func rdpToEpsilon(orders, rdp []float64, delta float64) (eps, order float64) {
	best, bestOrder := math.Inf(1), math.NaN()
	for k, a := range orders {
		r := rdp[k]
		var e float64
		switch {
		case r < 0:
			e = 0 // numerical noise on a tiny divergence
		case delta*delta+math.Expm1(-r) > 0:
			e = 0
		case a > 1.01:
			e = r + math.Log1p(-1/a) - math.Log(delta*a)/(a-1)
		default:
			e = math.Inf(1)
		}
		if e < best || math.IsNaN(bestOrder) {
			best, bestOrder = e, a
		}
	}
	return math.Max(0, best), bestOrder
}

// rdpToDelta converts RDP values to δ for ε: the smaller of the KL bound
// sqrt(1 − e^{−r}) and the improved conversion
// δ = exp((α−1)(r − ε + log(1 − 1/α)) − log α) for α > 1.01.
func rdpToDelta(orders, rdp []float64, eps float64) (delta, order float64) {
	best, bestOrder := math.Inf(1), math.NaN()
	for k, a := range orders {
		r := rdp[k]
		var ld float64
		switch {
		case r <= 0:
			ld = math.Inf(-1)
		default:
			// log(1 − e^{−r}) via expm1: 1 − e^{−r} rounds to 0 for
			// r < 1.1e-16, which would claim δ = 0.
			ld = 0.5 * math.Log(-math.Expm1(-r))
		}
		if a > 1.01 {
			ld = math.Min(ld, (a-1)*(r-eps+math.Log1p(-1/a))-math.Log(a))
		}
		if ld < best || math.IsNaN(bestOrder) {
			best, bestOrder = ld, a
		}
	}
	return math.Min(math.Exp(best), 1), bestOrder
}
