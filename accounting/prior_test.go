package accounting

import (
	"math"
	"testing"
)

// TestEpsilonAfterGaussianClosedForm: with q = 1 every DP-SGD step is a
// Gaussian mechanism, so a prior of two Gaussians with σ_n followed by T
// steps with σ is one Gaussian with σ_eff^-2 = 2σ_n^-2 + Tσ^-2, whose exact
// ε(δ) is known (Balle & Wang). PLD must bound it from above, tightly; RDP
// from above, loosely; and both must exceed the ε of the steps alone.
func TestEpsilonAfterGaussianClosedForm(t *testing.T) {
	cases := []struct {
		sigmaN, sigma float64
		steps         int
	}{
		{8, 20, 50},
		{4, 10, 10},
		{2, 50, 300},
	}
	prior := func(s float64) Event { return SelfComposed{Event: Gaussian{s}, Count: 2} }
	for _, c := range cases {
		effective := 1 / math.Sqrt(2/(c.sigmaN*c.sigmaN)+float64(c.steps)/(c.sigma*c.sigma))
		exact := gaussianEpsilon(effective, 1e-5)
		pld, err := EpsilonAfter(KindPLD, 1e-5, 1, c.sigma, c.steps, prior(c.sigmaN))
		if err != nil {
			t.Fatal(err)
		}
		if pld < exact-1e-9 || pld > exact*1.01+1e-3 {
			t.Errorf("σ_n=%g σ=%g T=%d: PLD ε=%.6g, exact %.6g", c.sigmaN, c.sigma, c.steps, pld, exact)
		}
		rdp, err := EpsilonAfter(KindRDP, 1e-5, 1, c.sigma, c.steps, prior(c.sigmaN))
		if err != nil {
			t.Fatal(err)
		}
		if rdp < exact {
			t.Errorf("σ_n=%g σ=%g T=%d: RDP ε=%.6g below the exact %.6g", c.sigmaN, c.sigma, c.steps, rdp, exact)
		}
		alone, _ := ComputeEpsilon(KindPLD, 1e-5, 1, c.sigma, c.steps)
		if !(pld > alone) {
			t.Errorf("σ_n=%g σ=%g T=%d: with the prior ε=%g, without %g", c.sigmaN, c.sigma, c.steps, pld, alone)
		}
	}
}

// TestCalibrateNoiseAfter: the σ returned meets the target with the prior
// counted, is minimal to the tolerance, and is larger than without it;
// MaxStepsAfter is the exact largest step count within the budget.
func TestCalibrateNoiseAfter(t *testing.T) {
	prior := SelfComposed{Event: Gaussian{8}, Count: 2}
	for _, kind := range []string{KindRDP, KindPLD} {
		const target, delta, q, steps = 3.0, 1e-5, 8192.0 / 50000, 120
		sigma, eps, err := CalibrateNoiseAfter(kind, target, delta, q, steps, prior)
		if err != nil {
			t.Fatal(err)
		}
		check, err := EpsilonAfter(kind, delta, q, sigma, steps, prior)
		if err != nil {
			t.Fatal(err)
		}
		if check != eps || eps > target {
			t.Errorf("%s: σ=%g: ε=%g (reported %g), target %g", kind, sigma, check, eps, target)
		}
		tol := RDPCalibrationTolerance
		if kind == KindPLD {
			tol = PLDCalibrationTolerance
		}
		if e, _ := EpsilonAfter(kind, delta, q, sigma/(1+2*tol), steps, prior); e <= target {
			t.Errorf("%s: σ=%g not minimal: σ/(1+2tol) has ε=%g", kind, sigma, e)
		}
		alone, _ := CalibrateNoise(kind, target, delta, q, steps)
		if !(sigma > alone) {
			t.Errorf("%s: σ=%g with the prior, %g without", kind, sigma, alone)
		}

		n, err := MaxStepsAfter(kind, target, delta, q, sigma, prior)
		if err != nil {
			t.Fatal(err)
		}
		if n < steps {
			t.Errorf("%s: MaxStepsAfter=%d < the %d steps σ was calibrated for", kind, n, steps)
		}
		if e, _ := EpsilonAfter(kind, delta, q, sigma, n, prior); e > target {
			t.Errorf("%s: %d steps after the prior: ε=%g > %g", kind, n, e, target)
		}
		if e, _ := EpsilonAfter(kind, delta, q, sigma, n+1, prior); e <= target {
			t.Errorf("%s: %d steps is not the maximum: %d has ε=%g", kind, n, n+1, e)
		}
		without, _ := MaxSteps(kind, target, delta, q, sigma)
		if n >= without {
			t.Errorf("%s: %d steps after the prior, %d without", kind, n, without)
		}
	}
	// A prior that alone spends more than the target: unreachable.
	if _, _, err := CalibrateNoiseAfter(KindRDP, 0.5, 1e-5, 0.01, 100, Gaussian{0.5}); err == nil {
		t.Error("prior Gaussian(0.5) alone exceeds ε=0.5: want an error")
	}
}
