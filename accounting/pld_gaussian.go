package accounting

import (
	"fmt"
	"math"

	"dptrain/internal/gauss"
)

// subsampledGaussian is the privacy loss of the Gaussian mechanism (noise σ,
// sensitivity 1) on a Poisson sample with rate q, for one of the two
// adjacencies of add-or-remove-one (after dp_accounting's
// GaussianPrivacyLoss; μ = N(0, σ²)):
//
//	remove: upper (1−q)μ(x) + qμ(x+1), lower μ(x);
//	add:    upper μ(x), lower (1−q)μ(x) + qμ(x−1).
//
// The loss is non-increasing in x.
//
// All positions are standardised, z = x/σ, and σ² is never formed: for
// σ > sqrt(MaxFloat64) ≈ 1.3e154 it overflows to +Inf, the loss
// (0.5 − x)/σ² collapses to 0 and the inverse loss 0.5 − ε·σ² becomes
// 0·Inf = NaN at ε = 0 (the NaN ε of reliability probe L9); with
// z = x/σ the loss is (±0.5/σ − z)/σ and its inverse ±0.5/σ − ε·σ, which
// stay finite (or overflow to ±Inf where the CDFs are exactly 0 or 1) for
// every finite σ above 1/MaxFloat64.
type subsampledGaussian struct {
	sigma, q float64
	add      bool
}

// logMassTruncation is dp_accounting's log_mass_truncation_bound: the noise
// tails beyond the quantiles at ½e^-50 are treated pessimistically.
const logMassTruncation = -50

// shift returns 1/σ, the distance between the two Gaussians' means in
// standardised units.
func (g subsampledGaussian) shift() float64 { return 1 / g.sigma }

// lossNoSampling is the loss of the plain Gaussian mechanism at the
// standardised position z (x = σz): (±0.5 − x)/σ².
func (g subsampledGaussian) lossNoSampling(z float64) float64 {
	h := 0.5 / g.sigma
	if g.add {
		return (h - z) / g.sigma
	}
	return (-h - z) / g.sigma
}

// loss returns the privacy loss at the standardised position z.
func (g subsampledGaussian) loss(z float64) float64 {
	l := g.lossNoSampling(z)
	switch {
	case g.q == 1:
		return l
	case g.add:
		return -logAExpBPlusC(g.q, -l, 1-g.q)
	default:
		return logAExpBPlusC(g.q, l, 1-g.q)
	}
}

// inverseLoss returns the largest standardised position z whose privacy
// loss is at least eps.
func (g subsampledGaussian) inverseLoss(eps float64) float64 {
	l := eps
	if g.q < 1 {
		if g.add {
			if isClose(eps, -math.Log(1-g.q)) {
				l = math.Inf(1)
			} else {
				l = -logAExpBPlusC(1/g.q, -eps, 1-1/g.q)
			}
		} else {
			if isClose(eps, math.Log(1-g.q)) {
				l = math.Inf(-1)
			} else {
				l = logAExpBPlusC(1/g.q, eps, 1-1/g.q)
			}
		}
	}
	// x = ±0.5 − l·σ², so z = ±0.5/σ − l·σ (l·σ may overflow to ±Inf:
	// then z is beyond every quantile, as it should be).
	h := 0.5 / g.sigma
	if g.add {
		return h - l*g.sigma
	}
	return -h - l*g.sigma
}

// upperCDF returns the upper distribution's CDF at the standardised z.
func (g subsampledGaussian) upperCDF(z float64) float64 {
	switch {
	case g.add:
		return gauss.CDF(z)
	case g.q == 1:
		return gauss.CDF(z + g.shift())
	default:
		return (1-g.q)*gauss.CDF(z) + g.q*gauss.CDF(z+g.shift())
	}
}

// lowerLogCDF returns the log of the lower distribution's CDF at the
// standardised z.
func (g subsampledGaussian) lowerLogCDF(z float64) float64 {
	switch {
	case !g.add:
		return gauss.LogCDF(z)
	case g.q == 1:
		return gauss.LogCDF(z - g.shift())
	default:
		return logAdd(math.Log1p(-g.q)+gauss.LogCDF(z), math.Log(g.q)+gauss.LogCDF(z-g.shift()))
	}
}

// delta returns the ε-hockey-stick divergence of the mechanism.
func (g subsampledGaussian) delta(eps float64) float64 {
	if g.q < 1 {
		if g.add && eps >= -math.Log1p(-g.q) {
			return 0
		}
		if !g.add && eps <= math.Log1p(-g.q) {
			return -math.Expm1(eps)
		}
	}
	z := g.inverseLoss(eps)
	d := g.upperCDF(z) - math.Exp(eps+g.lowerLogCDF(z))
	return math.Min(math.Max(d, 0), 1)
}

// pmf returns the pessimistic connect-the-dots discretisation with interval
// d, on the ε grid between the losses at the truncation points (as
// dp_accounting's from_gaussian_mechanism with use_connect_dots=True).
func (g subsampledGaussian) pmf(d float64, maxSize int) (*pmf, error) {
	lowerZ := normQuantileLog(-math.Ln2 + logMassTruncation)
	upperZ := -lowerZ
	if g.add {
		upperZ += g.shift()
	} else {
		lowerZ -= g.shift()
	}
	epsUpper, epsLower := g.loss(lowerZ), g.loss(upperZ)
	lo := math.Floor(epsLower / d)
	hi := math.Ceil(epsUpper / d)
	// The loss range grows as 1/σ²: for σ below ~1e-154 it is not even a
	// float64 (the count is then ±Inf or NaN).
	if n := hi - lo + 1; !(n <= float64(maxSize)) {
		need := "more than 1e308"
		if !math.IsNaN(n) && !math.IsInf(n, 0) {
			need = fmt.Sprintf("%.3g", n)
		}
		return nil, tooLarge("the PLD of σ=%g, q=%g needs %s points (limit %d)",
			g.sigma, g.q, need, maxSize)
	}
	n := int(hi-lo) + 1
	deltas := make([]float64, n)
	for k := range deltas {
		deltas[k] = g.delta((lo + float64(k)) * d)
		if math.IsNaN(deltas[k]) {
			return nil, fmt.Errorf("%w: the PLD of σ=%g, q=%g: hockey-stick divergence at ε=%g is NaN",
				ErrNumerical, g.sigma, g.q, (lo+float64(k))*d)
		}
	}
	return connectDots(d, int(lo), deltas), nil
}

// logAExpBPlusC returns log(a·e^b + c) for a > 0 (c of either sign, the
// result's argument positive).
func logAExpBPlusC(a, b, c float64) float64 {
	if b == 0 {
		return math.Log(a + c)
	}
	t := b + math.Log(a)
	switch {
	case c == 0:
		return t
	case c < 0:
		return logSub(t, math.Log(-c))
	default:
		return logAdd(t, math.Log(c))
	}
}

// isClose is Python's math.isclose with its default rel_tol=1e-9.
func isClose(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}
