package accounting

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestEpsilonPriorGaussianClosedForm: with q = 1 every DP-SGD step is a
// Gaussian mechanism, so a prior of two Gaussians with σ_n followed by T
// steps with σ is one Gaussian with σ_eff^-2 = 2σ_n^-2 + Tσ^-2, whose exact
// ε(δ) is known (Balle & Wang). PLD must bound it from above, tightly; RDP
// from above, loosely; and both must exceed the ε of the steps alone.
func TestEpsilonPriorGaussianClosedForm(t *testing.T) {
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
		pld, err := Epsilon(KindPLD, 1e-5, Schedule{SamplingRate: 1, NoiseMultiplier: c.sigma, Steps: c.steps, Prior: prior(c.sigmaN)})
		if err != nil {
			t.Fatal(err)
		}
		if pld < exact-1e-9 || pld > exact*1.01+1e-3 {
			t.Errorf("σ_n=%g σ=%g T=%d: PLD ε=%.6g, exact %.6g", c.sigmaN, c.sigma, c.steps, pld, exact)
		}
		rdp, err := Epsilon(KindRDP, 1e-5, Schedule{SamplingRate: 1, NoiseMultiplier: c.sigma, Steps: c.steps, Prior: prior(c.sigmaN)})
		if err != nil {
			t.Fatal(err)
		}
		if rdp < exact {
			t.Errorf("σ_n=%g σ=%g T=%d: RDP ε=%.6g below the exact %.6g", c.sigmaN, c.sigma, c.steps, rdp, exact)
		}
		alone, _ := Epsilon(KindPLD, 1e-5, Schedule{SamplingRate: 1, NoiseMultiplier: c.sigma, Steps: c.steps})
		if !(pld > alone) {
			t.Errorf("σ_n=%g σ=%g T=%d: with the prior ε=%g, without %g", c.sigmaN, c.sigma, c.steps, pld, alone)
		}
	}
}

// TestCalibrateWithPrior: with Schedule.Prior, the σ CalibrateNoise returns
// meets the budget with the prior counted, is minimal to the tolerance, and
// is larger than without it; MaxSteps is the exact largest step count
// within the budget after the prior.
func TestCalibrateWithPrior(t *testing.T) {
	prior := SelfComposed{Event: Gaussian{8}, Count: 2}
	b := Budget{Epsilon: 3, Delta: 1e-5}
	for _, kind := range []Kind{KindRDP, KindPLD} {
		s := Schedule{SamplingRate: 8192.0 / 50000, Steps: 120, Prior: prior}
		sigma, eps, err := CalibrateNoise(kind, b, s)
		if err != nil {
			t.Fatal(err)
		}
		epsAt := func(sigma float64, steps int) float64 {
			t.Helper()
			e, err := Epsilon(kind, b.Delta, Schedule{SamplingRate: s.SamplingRate, NoiseMultiplier: sigma, Steps: steps, Prior: prior})
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		if check := epsAt(sigma, s.Steps); check != eps || eps > b.Epsilon {
			t.Errorf("%s: σ=%g: ε=%g (reported %g), target %g", kind, sigma, check, eps, b.Epsilon)
		}
		if e := epsAt(sigma/(1+2*kind.tolerance()), s.Steps); e <= b.Epsilon {
			t.Errorf("%s: σ=%g not minimal: σ/(1+2tol) has ε=%g", kind, sigma, e)
		}
		alone := s
		alone.Prior = nil
		if sigmaAlone, _, _ := CalibrateNoise(kind, b, alone); !(sigma > sigmaAlone) {
			t.Errorf("%s: σ=%g with the prior, %g without", kind, sigma, sigmaAlone)
		}

		s.NoiseMultiplier = sigma
		n, err := MaxSteps(kind, b, s)
		if err != nil {
			t.Fatal(err)
		}
		if n < s.Steps {
			t.Errorf("%s: MaxSteps=%d < the %d steps σ was calibrated for", kind, n, s.Steps)
		}
		if e := epsAt(sigma, n); e > b.Epsilon {
			t.Errorf("%s: %d steps after the prior: ε=%g > %g", kind, n, e, b.Epsilon)
		}
		if e := epsAt(sigma, n+1); e <= b.Epsilon {
			t.Errorf("%s: %d steps is not the maximum: %d has ε=%g", kind, n, n+1, e)
		}
		alone.NoiseMultiplier = sigma
		if without, _ := MaxSteps(kind, b, alone); n >= without {
			t.Errorf("%s: %d steps after the prior, %d without", kind, n, without)
		}
	}
	// A prior that alone spends more than the target: unreachable, typed.
	_, _, err := CalibrateNoise(KindRDP, Budget{Epsilon: 0.5, Delta: 1e-5}, Schedule{SamplingRate: 0.01, Steps: 100, Prior: Gaussian{0.5}})
	var u *UnreachableError
	if !errors.As(err, &u) || !errors.Is(err, ErrUnreachable) || u.X != MaxNoiseMultiplier || !strings.Contains(err.Error(), "after Gaussian(σ=0.5)") {
		t.Errorf("prior Gaussian(0.5) alone exceeds ε=0.5: %v, want an *UnreachableError after the prior", err)
	}
}

// TestScheduleEvent: the steps alone without a prior, the prior then the
// steps with one; the fields the functions ignore are ignored.
func TestScheduleEvent(t *testing.T) {
	s := Schedule{SamplingRate: 0.01, NoiseMultiplier: 1.1, Steps: 30}
	if e := s.Event(); !equalEvents(e, Steps(0.01, 1.1, 30)) {
		t.Errorf("no prior: %v", e)
	}
	s.Prior = Gaussian{8}
	if e := s.Event(); !equalEvents(e, Composed{Events: []Event{Gaussian{8}, Steps(0.01, 1.1, 30)}}) {
		t.Errorf("with a prior: %v", e)
	}
	b := Budget{Epsilon: 2, Delta: 1e-5}
	n1, err1 := MaxSteps(KindRDP, b, s)
	s.Steps = 7
	n2, err2 := MaxSteps(KindRDP, b, s)
	if err1 != nil || err2 != nil || n1 != n2 {
		t.Errorf("MaxSteps reads Schedule.Steps: %d, %d (%v, %v)", n1, n2, err1, err2)
	}
	s1, _, err1 := CalibrateNoise(KindRDP, b, s)
	s.NoiseMultiplier = 50
	s2, _, err2 := CalibrateNoise(KindRDP, b, s)
	if err1 != nil || err2 != nil || s1 != s2 {
		t.Errorf("CalibrateNoise reads Schedule.NoiseMultiplier: %g, %g (%v, %v)", s1, s2, err1, err2)
	}
	for _, bad := range []Budget{{Epsilon: 0, Delta: 1e-5}, {Epsilon: 1, Delta: 0}, {Epsilon: math.Inf(1), Delta: 1e-5}, {Epsilon: 1e-5, Delta: 1}} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v.Validate() = %v", bad, err)
		}
	}
}
