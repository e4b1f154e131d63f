package accounting

import (
	"errors"
	"math"
	"testing"

	"dptrain/internal/gauss"
)

// gaussianDelta is the exact δ(ε) of the Gaussian mechanism with σ and
// sensitivity 1 (Balle & Wang 2018).
func gaussianDelta(sigma, eps float64) float64 {
	a := 1 / (2 * sigma)
	return gauss.CDF(a-eps*sigma) - math.Exp(eps)*gauss.CDF(-a-eps*sigma)
}

// gaussianEpsilon inverts gaussianDelta by bisection.
func gaussianEpsilon(sigma, delta float64) float64 {
	lo, hi := 0.0, 100.0
	for range 200 {
		mid := (lo + hi) / 2
		if gaussianDelta(sigma, mid) > delta {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// TestPLDGaussianAgainstClosedForm: for the plain Gaussian mechanism, alone,
// self-composed (σ/√n) and composed with another (σ_eff^-2 = Σ σ_i^-2), the
// PLD's ε is an upper bound on the exact one, tight to a few intervals.
func TestPLDGaussianAgainstClosedForm(t *testing.T) {
	cases := []struct {
		e     Event
		sigma float64 // of the equivalent single Gaussian
	}{
		{Gaussian{1}, 1},
		{Gaussian{0.7}, 0.7},
		{SelfComposed{Event: Gaussian{3}, Count: 9}, 1},
		{Composed{Events: []Event{Gaussian{1.5}, Gaussian{2}}}, 1 / math.Sqrt(1/2.25+1/4.0)},
		{Steps(1, 2, 4), 1}, // q = 1 takes the subsampled path
	}
	for _, c := range cases {
		a := NewPLD(PLDOptions{})
		if err := a.Compose(c.e); err != nil {
			t.Fatal(err)
		}
		for _, delta := range []float64{1e-3, 1e-5, 1e-7} {
			got, _ := a.Epsilon(delta)
			want := gaussianEpsilon(c.sigma, delta)
			if got < want-1e-9 || got > want+5e-4 {
				t.Errorf("%v δ=%g: PLD ε = %.8g, exact %.8g", c.e, delta, got, want)
			}
		}
		for _, eps := range []float64{0.1, 1, 3} {
			got, _ := a.Delta(eps)
			want := gaussianDelta(c.sigma, eps)
			if got < want*(1-1e-9) || got > want*1.01+1e-15 {
				t.Errorf("%v ε=%g: PLD δ = %.8g, exact %.8g", c.e, eps, got, want)
			}
		}
	}
}

// TestPLDBelowRDP: on the same inputs the PLD ε is below the RDP ε (the RDP
// conversion is lossy), up to the discretisation.
func TestPLDBelowRDP(t *testing.T) {
	for _, c := range []struct {
		q, s float64
		n    int
	}{{0.01, 1, 1000}, {0.1, 2, 100}, {0.004, 0.8, 2000}, {1, 3, 10}, {0.5, 5, 50}} {
		for _, delta := range []float64{1e-5, 1e-8} {
			r, _ := Epsilon(KindRDP, delta, Schedule{SamplingRate: c.q, NoiseMultiplier: c.s, Steps: c.n})
			p, _ := Epsilon(KindPLD, delta, Schedule{SamplingRate: c.q, NoiseMultiplier: c.s, Steps: c.n})
			if p > r+1e-3 || p <= 0 {
				t.Errorf("q=%g σ=%g T=%d δ=%g: PLD ε %.6g, RDP ε %.6g", c.q, c.s, c.n, delta, p, r)
			}
		}
	}
}

func TestPLDDeltaEpsilonConsistent(t *testing.T) {
	a := NewPLD(PLDOptions{})
	if err := a.Compose(Steps(0.02, 0.9, 300)); err != nil {
		t.Fatal(err)
	}
	for _, delta := range []float64{1e-3, 1e-5, 1e-7} {
		eps, _ := a.Epsilon(delta)
		d, _ := a.Delta(eps)
		if d > delta*(1+1e-9) || d < delta*0.999 {
			t.Errorf("δ=%g: ε=%g gives back δ=%g", delta, eps, d)
		}
	}
}

func TestPLDDiscretizationOption(t *testing.T) {
	fine := NewPLD(PLDOptions{DiscretizationInterval: 1e-4})
	coarse := NewPLD(PLDOptions{DiscretizationInterval: 1e-3})
	if coarse.DiscretizationInterval() != 1e-3 || NewPLD(PLDOptions{}).DiscretizationInterval() != DefaultDiscretizationInterval {
		t.Fatal("interval not kept")
	}
	for _, a := range []*PLD{fine, coarse} {
		if err := a.Compose(Steps(0.01, 1, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	ef, _ := fine.Epsilon(1e-5)
	ec, _ := coarse.Epsilon(1e-5)
	if math.Abs(ec-ef) > 0.01*ef {
		t.Errorf("ε at interval 1e-3 = %g, at 1e-4 = %g: more than 1%% apart", ec, ef)
	}
}

func TestPLDTooLargeLeavesStateUnchanged(t *testing.T) {
	a := NewPLD(PLDOptions{DiscretizationInterval: 1e-3, MaxSize: 1 << 14})
	if err := a.Compose(Steps(0.1, 2, 10)); err != nil {
		t.Fatal(err)
	}
	before, _ := a.Epsilon(1e-5)
	err := a.Compose(Steps(0.1, 2, 100000))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Compose of a huge PLD: %v, want ErrTooLarge", err)
	}
	if after, _ := a.Epsilon(1e-5); after != before {
		t.Errorf("state changed by a failed Compose: %v → %v", before, after)
	}
}
