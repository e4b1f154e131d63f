package accounting

import (
	"errors"
	"math"
)

// logAdd returns log(exp(a) + exp(b)) without overflow (+Inf if either is).
func logAdd(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	if math.IsInf(b, -1) || math.IsInf(a, 1) { // (+Inf − +Inf would be NaN)
		return a
	}
	return a + math.Log1p(math.Exp(b-a))
}

// logErfc returns log(erfc(x)), accurate also where erfc underflows.
func logErfc(x float64) float64 {
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

// logNormCDF returns log Φ(z) for the standard normal distribution.
func logNormCDF(z float64) float64 {
	return -math.Ln2 + logErfc(-z/math.Sqrt2)
}

// normCDF returns Φ(z) for the standard normal distribution.
func normCDF(z float64) float64 {
	return 0.5 * math.Erfc(-z/math.Sqrt2)
}

// normQuantileLog returns z with log Φ(z) = logp, for logp < log(1/2): the
// lower-tail quantile of the standard normal, accurate for tiny p (where
// math.Erfinv(1-2p) would lose all precision).
func normQuantileLog(logp float64) float64 {
	// log Φ is concave and increasing, so Newton's method from a point left
	// of the root converges monotonically.
	z := -math.Sqrt(-2*logp) - 1
	for range 100 {
		lc := logNormCDF(z)
		lpdf := -0.5*z*z - 0.5*math.Log(2*math.Pi)
		dz := (logp - lc) / math.Exp(lpdf-lc)
		z += dz
		if math.Abs(dz) <= 1e-15*math.Abs(z) {
			break
		}
	}
	return z
}

// logFactorials caches log(n!) for the integer-order RDP terms.
var logFactorials = func() []float64 {
	const n = 4097
	t := make([]float64, n)
	for i := 2; i < n; i++ {
		lg, _ := math.Lgamma(float64(i + 1))
		t[i] = lg
	}
	return t
}()

// logFactorial returns log(n!) for n ≥ 0.
func logFactorial(n int) float64 {
	if n < len(logFactorials) {
		return logFactorials[n]
	}
	lg, _ := math.Lgamma(float64(n) + 1)
	return lg
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
