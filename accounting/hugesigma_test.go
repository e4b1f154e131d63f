package accounting

import (
	"math"
	"strings"
	"testing"
)

// TestHugeNoiseMultiplierFiniteEpsilon covers probe L9: ε of both
// accountants is finite, ≥ 0 and non-increasing in σ up to
// math.MaxFloat64 (the PLD gave NaN from σ ≈ 1e155 at 5adac92).
func TestHugeNoiseMultiplierFiniteEpsilon(t *testing.T) {
	for _, kind := range []Kind{KindPLD, KindRDP} {
		for _, q := range []float64{0.01, 1} {
			prev := math.Inf(1)
			for _, s := range []float64{1e8, 1e100, 1e154, 1e155, 1e200, 1e300, math.MaxFloat64} {
				eps, err := Epsilon(kind, 1e-5, Schedule{SamplingRate: q, NoiseMultiplier: s, Steps: 1000})
				if err != nil || math.IsNaN(eps) || math.IsInf(eps, 0) || eps < 0 || eps > prev {
					t.Errorf("%s q=%g σ=%g: ε=%v, %v (previous σ: %v)", kind, q, s, eps, err, prev)
				}
				prev = eps
			}
		}
	}
}

// TestTooLargePLDAdvisesOnce covers probe M7/L8: the error appears once
// and names what the user can change.
func TestTooLargePLDAdvisesOnce(t *testing.T) {
	_, err := Epsilon(KindPLD, 1e-5, Schedule{SamplingRate: 0.01, NoiseMultiplier: 1e-9, Steps: 1000})
	if err == nil {
		t.Fatal("σ = 1e-9 accepted")
	}
	msg := err.Error()
	if strings.Count(msg, "too large") != 1 || !strings.Contains(msg, "accountant: rdp") || strings.Contains(msg, "discretization interval") {
		t.Fatalf("message %q", msg)
	}
}
