package accounting

import (
	"fmt"
	"math"
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
type subsampledGaussian struct {
	sigma, q float64
	add      bool
}

// logMassTruncation is dp_accounting's log_mass_truncation_bound: the noise
// tails beyond the quantiles at ½e^-50 are treated pessimistically.
const logMassTruncation = -50

// lossNoSampling is the loss of the plain Gaussian mechanism at x.
func (g subsampledGaussian) lossNoSampling(x float64) float64 {
	if g.add {
		return (0.5 - x) / (g.sigma * g.sigma)
	}
	return (-0.5 - x) / (g.sigma * g.sigma)
}

// loss returns the privacy loss at x.
func (g subsampledGaussian) loss(x float64) float64 {
	l := g.lossNoSampling(x)
	switch {
	case g.q == 1:
		return l
	case g.add:
		return -logAExpBPlusC(g.q, -l, 1-g.q)
	default:
		return logAExpBPlusC(g.q, l, 1-g.q)
	}
}

// inverseLoss returns the largest x whose privacy loss is at least eps.
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
	s2 := g.sigma * g.sigma
	if g.add {
		return 0.5 - l*s2
	}
	return -0.5 - l*s2
}

func (g subsampledGaussian) upperCDF(x float64) float64 {
	s := g.sigma
	switch {
	case g.add:
		return normCDF(x / s)
	case g.q == 1:
		return normCDF((x + 1) / s)
	default:
		return (1-g.q)*normCDF(x/s) + g.q*normCDF((x+1)/s)
	}
}

func (g subsampledGaussian) lowerLogCDF(x float64) float64 {
	s := g.sigma
	switch {
	case !g.add:
		return logNormCDF(x / s)
	case g.q == 1:
		return logNormCDF((x - 1) / s)
	default:
		return logAdd(math.Log1p(-g.q)+logNormCDF(x/s), math.Log(g.q)+logNormCDF((x-1)/s))
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
	x := g.inverseLoss(eps)
	d := g.upperCDF(x) - math.Exp(eps+g.lowerLogCDF(x))
	return math.Min(math.Max(d, 0), 1)
}

// pmf returns the pessimistic connect-the-dots discretisation with interval
// d, on the ε grid between the losses at the truncation points (as
// dp_accounting's from_gaussian_mechanism with use_connect_dots=True).
func (g subsampledGaussian) pmf(d float64, maxSize int) (*pmf, error) {
	lowerX := g.sigma * normQuantileLog(-math.Ln2+logMassTruncation)
	upperX := -lowerX
	if g.add {
		upperX++
	} else {
		lowerX--
	}
	epsUpper, epsLower := g.loss(lowerX), g.loss(upperX)
	lo := math.Floor(epsLower / d)
	hi := math.Ceil(epsUpper / d)
	if !(hi-lo+1 <= float64(maxSize)) {
		return nil, fmt.Errorf("%w: the PLD of σ=%g, q=%g needs %.3g points at interval %g (limit %d); use a coarser discretization interval",
			ErrTooLarge, g.sigma, g.q, hi-lo+1, d, maxSize)
	}
	n := int(hi-lo) + 1
	deltas := make([]float64, n)
	for k := range deltas {
		deltas[k] = g.delta((lo + float64(k)) * d)
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
