package audit

import (
	"math"

	"dptrain/internal/gauss"
)

// normQuantile returns Φ⁻¹(p) for p in [0, 1] (±Inf at the ends). The
// starting value comes from math.Erfinv (Wichura's AS 241 rational
// approximation); where 2p−1 would lose the digits of a small p, two Halley
// steps against the erfc-based Φ restore full relative accuracy.
func normQuantile(p float64) float64 {
	switch {
	case math.IsNaN(p) || p < 0 || p > 1:
		return math.NaN()
	case p == 0:
		return math.Inf(-1)
	case p == 1:
		return math.Inf(1)
	case p > 0.5:
		// 1−p is exact for p in [0.5, 1] (Sterbenz).
		return -normQuantile(1 - p)
	}
	// From here on p ≤ 0.5 and z ≤ 0.
	var z float64
	if p > 1e-3 {
		// 2p−1 keeps p's digits to ~1e-16/p relative; one Halley step
		// below polishes the last bits.
		z = math.Sqrt2 * math.Erfinv(2*p-1)
	} else {
		// Asymptotic start: z ≈ −√(t − log t − log 2π), t = −2 log p.
		t := -2 * math.Log(p)
		z = -math.Sqrt(t - math.Log(t) - math.Log(2*math.Pi))
	}
	for it := 0; it < 3; it++ {
		// Halley's method on g(z) = log Φ(z) − log p, which stays well
		// scaled however small p is.
		lc := gauss.LogCDF(z)
		g := lc - math.Log(p)
		// g' = φ/Φ = exp(log φ − log Φ); g'' = −g'(z + g').
		d1 := math.Exp(-0.5*z*z - 0.5*math.Log(2*math.Pi) - lc)
		d2 := -d1 * (z + d1)
		step := g / d1
		step /= 1 - 0.5*step*d2/d1
		z -= step
		if math.Abs(step) <= 1e-15*math.Max(1, math.Abs(z)) {
			break
		}
	}
	return z
}

// gaussianLogDelta returns log δ(ε) for μ-Gaussian DP:
// δ(ε) = Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2) (Dong, Roth & Su 2019, Cor. 2.13).
func gaussianLogDelta(mu, eps float64) float64 {
	if mu <= 0 {
		return math.Inf(-1)
	}
	if math.IsInf(mu, 1) {
		return 0
	}
	a := -eps/mu + mu/2
	b := -eps/mu - mu/2
	if a >= -1 && eps < 700 {
		// Where Φ(a) is not small, δ may be far below it (small μ and ε);
		// the form [Φ(a) − Φ(b)] − (e^ε − 1)Φ(b), with Φ(a) − Φ(b) from erf,
		// then has no cancellation.
		d := 0.5*(math.Erf(a/math.Sqrt2)-math.Erf(b/math.Sqrt2)) - math.Expm1(eps)*gauss.CDF(b)
		if d > 0 {
			return math.Log(d)
		}
	}
	la := gauss.LogCDF(a)
	lb := eps + gauss.LogCDF(b)
	if lb >= la { // only by rounding: the difference is positive for μ > 0
		return math.Inf(-1)
	}
	return la + math.Log1p(-math.Exp(lb-la))
}

// gaussianMu returns the μ of the Gaussian-DP mechanism that is exactly
// (ε, δ)-DP: the μ with δ(ε; μ) = δ. δ(ε; μ) increases strictly in μ, from
// 0 at μ = 0 to 1 as μ → ∞, so μ is found by bisection (on log μ, to about
// 1e-14 relative). This is the inverse of dp_accounting's
// get_sigma_gaussian: μ = 1/σ for a Gaussian mechanism of sensitivity 1.
// δ must lie in (0, 1); ε ≥ 0.
func gaussianMu(eps, delta float64) float64 {
	if math.IsInf(eps, 1) {
		return math.Inf(1)
	}
	ld := math.Log(delta)
	lo, hi := 0.5, 1.0
	for gaussianLogDelta(hi, eps) < ld {
		lo, hi = hi, 2*hi
		if hi > 1e15 {
			return math.Inf(1)
		}
	}
	for gaussianLogDelta(lo, eps) >= ld {
		hi, lo = lo, lo/2
		if lo < 1e-300 {
			return lo
		}
	}
	for i := 0; i < 200 && hi-lo > 1e-14*hi; i++ {
		mid := math.Sqrt(lo * hi)
		if mid <= lo || mid >= hi {
			break
		}
		if gaussianLogDelta(mid, eps) < ld {
			lo = mid
		} else {
			hi = mid
		}
	}
	return 0.5 * (lo + hi)
}
