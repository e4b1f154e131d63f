package accounting

import (
	"errors"
	"math"

	"dptrain/internal/gauss"
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

// normQuantileLog returns z with log Φ(z) = logp, for logp < log(1/2): the
// lower-tail quantile of the standard normal, accurate for tiny p (where
// math.Erfinv(1-2p) would lose all precision).
func normQuantileLog(logp float64) float64 {
	// log Φ is concave and increasing, so Newton's method from a point left
	// of the root converges monotonically.
	z := -math.Sqrt(-2*logp) - 1
	for range 100 {
		lc := gauss.LogCDF(z)
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
