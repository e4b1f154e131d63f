// Package gauss holds the standard normal distribution's functions that
// the accountant (accounting) and the audit (audit) both need, accurate in
// the far tails where the naive formulas underflow.
package gauss

import "math"

// CDF returns Φ(z), the standard normal distribution function. Through
// erfc it is accurate to a few ulps in relative terms in the lower tail too.
func CDF(z float64) float64 {
	return 0.5 * math.Erfc(-z/math.Sqrt2)
}

// LogErfc returns log(erfc(x)), accurate also where erfc underflows.
func LogErfc(x float64) float64 {
	if x < 20 {
		return math.Log(math.Erfc(x))
	}
	// Asymptotic expansion: erfc(x) = exp(-x²)/(x√π) · Σ_k (-1)^k (2k-1)!!/(2x²)^k.
	// At x ≥ 20 the terms fall by a factor ≥ 1/(2x²)·(2k-1) ≤ 0.03 each, so
	// eight terms are exact to double precision.
	inv := 1 / (2 * x * x)
	s, term := 1.0, 1.0
	for k := 1; k <= 8; k++ {
		term *= -float64(2*k-1) * inv
		s += term
	}
	return -x*x - math.Log(x) - 0.5*math.Log(math.Pi) + math.Log(s)
}

// LogCDF returns log Φ(z).
func LogCDF(z float64) float64 {
	return -math.Ln2 + LogErfc(-z/math.Sqrt2)
}
