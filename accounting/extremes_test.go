package accounting

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// hugeSigmas are the noise multipliers of reliability probe L9 (trial 4.23:
// the PLD gave ε = NaN with no error from σ ≈ 1e155, where σ² overflows).
var hugeSigmas = []float64{1e8, 1e100, 1e154, 1e155, 1e200, 1e300, math.MaxFloat64}

// TestEpsilonHugeNoise: for σ up to MaxFloat64, q ∈ {0.01, 1}, both
// accountants, ε is finite, ≥ 0 and non-increasing in σ (so ≤ ε at σ =
// 1e8), δ(ε) is in [0, 1], and the PLD ε is at most the RDP ε (plus the
// discretisation interval). At δ = 1e-5 the truth is ε = 0 for every σ
// here (δ(0), the total variation, is ≈ q·√T/(σ√2π) ≤ 1.3e-7); at δ = 1e-10
// and σ = 1e8 it is > 0.
func TestEpsilonHugeNoise(t *testing.T) {
	const steps = 1000
	for _, q := range []float64{0.01, 1} {
		for _, delta := range []float64{1e-5, 1e-10} {
			prev := map[Kind]float64{KindPLD: math.Inf(1), KindRDP: math.Inf(1)}
			prevDelta := map[Kind]float64{KindPLD: 1, KindRDP: 1}
			for _, s := range hugeSigmas {
				eps := map[Kind]float64{}
				for _, kind := range []Kind{KindPLD, KindRDP} {
					e, err := Epsilon(kind, delta, Schedule{SamplingRate: q, NoiseMultiplier: s, Steps: steps})
					if err != nil || math.IsNaN(e) || math.IsInf(e, 0) || e < 0 {
						t.Fatalf("%s q=%g σ=%g δ=%g: ε = %v, %v", kind, q, s, delta, e, err)
					}
					if e > prev[kind] {
						t.Errorf("%s q=%g δ=%g: ε(σ=%g) = %g > %g at the previous σ", kind, q, delta, s, e, prev[kind])
					}
					if delta == 1e-5 && e != 0 {
						t.Errorf("%s q=%g σ=%g δ=1e-5: ε = %g, want 0", kind, q, s, e)
					}
					prev[kind], eps[kind] = e, e

					a, _ := New(kind)
					if err := a.Compose(Steps(q, s, steps)); err != nil {
						t.Fatal(err)
					}
					d, err := a.Delta(0)
					if err != nil || !(d >= 0 && d <= 1) {
						t.Fatalf("%s q=%g σ=%g: δ(0) = %v, %v", kind, q, s, d, err)
					}
					if d > prevDelta[kind]+2e-15 { // the PLD's floor is its 1e-15 truncated mass
						t.Errorf("%s q=%g: δ(0) at σ=%g = %g > %g at the previous σ", kind, q, s, d, prevDelta[kind])
					}
					prevDelta[kind] = d
				}
				if eps[KindPLD] > eps[KindRDP]+DefaultDiscretizationInterval {
					t.Errorf("q=%g σ=%g δ=%g: PLD ε %g > RDP ε %g", q, s, delta, eps[KindPLD], eps[KindRDP])
				}
				if s == 1e8 && delta == 1e-10 && !(eps[KindPLD] > 0 && eps[KindRDP] > 0) {
					t.Errorf("q=%g σ=1e8 δ=1e-10: ε PLD %g, RDP %g; both must be > 0 (δ(0) ≈ %g > δ)",
						q, eps[KindPLD], eps[KindRDP], q*math.Sqrt(steps)/(s*math.Sqrt(2*math.Pi)))
				}
			}
		}
	}
}

// TestHugeNoiseProbeCase is trial 4.23 itself, through every public path:
// q = 0.01, 1000 steps, σ = 1e300, δ = 1e-5 is ε = 0 (RDP and PLD).
func TestHugeNoiseProbeCase(t *testing.T) {
	for _, kind := range []Kind{KindPLD, KindRDP} {
		var l Ledger
		if err := l.RecordN(Step(0.01, 1e300), 1000); err != nil {
			t.Fatal(err)
		}
		e1, err1 := l.Epsilon(kind, 1e-5)
		d1, err2 := l.Delta(kind, 1)
		e2, err3 := Epsilon(kind, 1e-5, Schedule{SamplingRate: 0.01, NoiseMultiplier: 1e300, Steps: 1000, Prior: Gaussian{NoiseMultiplier: math.MaxFloat64}})
		n, err4 := MaxSteps(kind, Budget{Epsilon: 1, Delta: 1e-5}, Schedule{SamplingRate: 0.01, NoiseMultiplier: 1e300})
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if e1 != 0 || e2 != 0 || !(d1 >= 0 && d1 < 1e-14) || n != MaxStepsLimit {
			t.Errorf("%s: ledger ε %v δ(1) %v, after a prior ε %v, max steps %d", kind, e1, d1, e2, n)
		}
	}
}

// TestPLDHugeNoiseGaussianExact: at q = 1 the T steps are one Gaussian with
// σ/√T, whose exact ε the PLD must bound, tightly (a few intervals), also
// where its tiny ε is far below the interval.
func TestPLDHugeNoiseGaussianExact(t *testing.T) {
	const steps = 1000
	for _, s := range []float64{1e4, 1e8} {
		for _, delta := range []float64{1e-5, 1e-10} {
			want := gaussianEpsilon(s/math.Sqrt(steps), delta)
			for _, e := range []Event{Steps(1, s, steps), SelfComposed{Event: Gaussian{s}, Count: steps}} {
				a := NewPLD(PLDOptions{})
				if err := a.Compose(e); err != nil {
					t.Fatal(err)
				}
				// One Gaussian is discretised once; T discretised steps
				// compose their (pessimistic) rounding: a few percent.
				slack := 4 * DefaultDiscretizationInterval
				if _, ok := e.(SelfComposed).Event.(PoissonSampled); ok {
					slack += 0.15 * want
				}
				got, err := a.Epsilon(delta)
				if err != nil || got < want-1e-12 || got > want+slack {
					t.Errorf("%v δ=%g: PLD ε = %v (%v), exact %.6g", e, delta, got, err, want)
				}
			}
			r := NewRDP(nil)
			if err := r.Compose(Steps(1, s, steps)); err != nil {
				t.Fatal(err)
			}
			if got, _ := r.Epsilon(delta); got < want-1e-12 {
				t.Errorf("σ=%g δ=%g: RDP ε = %g below the exact %g", s, delta, got, want)
			}
		}
	}
}

// TestRDPIntegerOrdersNoCancellation: log A_α of an integer order is
// α(α−1)q²/(2σ²) to first order in 1/σ² (the binomial factorial moment),
// which summing A_α instead of A_α − 1 loses entirely at σ ≳ 1e6.
func TestRDPIntegerOrdersNoCancellation(t *testing.T) {
	for _, s := range []float64{1e8, 1e100, 1e150} {
		for _, q := range []float64{0.01, 0.5} {
			for _, alpha := range []int{2, 3, 64, 1024} {
				a := float64(alpha)
				want := a * (a - 1) * q * q / (2 * s) / s
				if got := logAInt(q, s, alpha); math.Abs(got-want) > 1e-9*want {
					t.Errorf("q=%g σ=%g α=%d: log A = %g, want %g", q, s, alpha, got, want)
				}
			}
		}
	}
}

// TestRDPPositiveAtHugeNoise: every RDP value of a Gaussian-family step is
// > 0 (the true one is), also where the fractional-order series is
// rounding noise (it came out negative, i.e. ε = 0 at any δ) and where the
// value underflows. (+Inf is where the fractional series does not
// converge, as in dp_accounting: that order is never chosen.)
func TestRDPPositiveAtHugeNoise(t *testing.T) {
	orders := DefaultOrders()
	r := make([]float64, len(orders))
	for _, s := range hugeSigmas {
		for _, q := range []float64{0.01, 0.5, 1} {
			poissonGaussianRDP(r, orders, q, s)
			for k, v := range r {
				if !(v > 0) || (math.IsInf(v, 1) && orders[k] == math.Trunc(orders[k])) {
					t.Fatalf("q=%g σ=%g α=%g: RDP %v", q, s, orders[k], v)
				}
			}
		}
	}
	// At σ = 1e8, q = 0.01 δ(0) ≈ 1.26e-9 after 1000 steps: RDP must not
	// claim less (it claimed 0 from the orders 6.1 … 10.9).
	a := NewRDP(nil)
	if err := a.Compose(Steps(0.01, 1e8, 1000)); err != nil {
		t.Fatal(err)
	}
	if d, err := a.Delta(0); err != nil || d < 1e-9 {
		t.Errorf("RDP δ(0) = %g, %v; the true one is ≈ 1.26e-9", d, err)
	}
}

// TestEpsilonTinyNoise: for σ down to the smallest float64, RDP gives a
// finite or infinite ε, never NaN, non-increasing in σ; the PLD gives ε
// where the distribution fits and otherwise an error wrapping ErrTooLarge.
func TestEpsilonTinyNoise(t *testing.T) {
	sigmas := []float64{0.5, 1e-3, 1e-10, 1e-100, 1e-160, 1e-200, 1e-300, 5e-324}
	for _, q := range []float64{0.01, 0.5, 1} {
		prev := 0.0
		for _, s := range sigmas {
			e, err := Epsilon(KindRDP, 1e-5, Schedule{SamplingRate: q, NoiseMultiplier: s, Steps: 100})
			if err != nil || math.IsNaN(e) || e < prev {
				t.Errorf("RDP q=%g σ=%g: ε = %v, %v (larger σ: %v)", q, s, e, err, prev)
			}
			prev = e
			a := NewRDP(nil)
			if err := a.Compose(Steps(q, s, 100)); err != nil {
				t.Fatal(err)
			}
			if d, err := a.Delta(1); err != nil || !(d >= 0 && d <= 1) {
				t.Errorf("RDP q=%g σ=%g: δ(1) = %v, %v", q, s, d, err)
			}

			e, err = Epsilon(KindPLD, 1e-5, Schedule{SamplingRate: q, NoiseMultiplier: s, Steps: 100})
			switch {
			case s == 0.5:
				if err != nil || math.IsNaN(e) || e <= 0 || e > prev+1e-3 {
					t.Errorf("PLD q=%g σ=0.5: ε = %v, %v (RDP %v)", q, e, err, prev)
				}
			case !errors.Is(err, ErrTooLarge):
				t.Errorf("PLD q=%g σ=%g: ε = %v, %v; want ErrTooLarge", q, s, e, err)
			}
		}
	}
}

// TestTooLargeAdviceOnce covers probe M7/L8 (trials 1.26, 1.43, 4.18, 4.21,
// 4.30): a PLD too large for memory is an error wrapping ErrTooLarge that
// says so once and gives, once, advice the user can follow (the
// discretisation interval is no setting of theirs).
func TestTooLargeAdviceOnce(t *testing.T) {
	var l Ledger
	if err := l.RecordN(Step(0.01, 1e-9), 20); err != nil {
		t.Fatal(err)
	}
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: %v, want ErrTooLarge", name, err)
		}
		msg := err.Error()
		if n := strings.Count(msg, tooLargeAdvice); n != 1 {
			t.Errorf("%s: advice %d times in %q", name, n, msg)
		}
		if n := strings.Count(msg, ErrTooLarge.Error()); n != 1 {
			t.Errorf("%s: %q %d times in %q", name, ErrTooLarge.Error(), n, msg)
		}
		for _, bad := range []string{"discretization interval", "discretisation interval", "coarser"} {
			if strings.Contains(msg, bad) {
				t.Errorf("%s: %q advises a %s", name, msg, bad)
			}
		}
		for _, want := range []string{"accountant: rdp", "--accountant rdp", "larger noise multiplier", "fewer steps"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: %q lacks %q", name, msg, want)
			}
		}
	}
	_, err := Epsilon(KindPLD, 1e-5, Schedule{SamplingRate: 0.01, NoiseMultiplier: 1e-9, Steps: 20}) // trial 1.26 / 4.21: both directions fail
	check("σ=1e-9", err)
	_, err = Epsilon(KindPLD, 1e-5, Schedule{SamplingRate: 1, NoiseMultiplier: 1e-9, Steps: 20})
	check("σ=1e-9 q=1", err)
	_, err = Epsilon(KindPLD, 1e-5, Schedule{SamplingRate: 0.01, NoiseMultiplier: 5e-324, Steps: 20})
	check("σ=5e-324", err)
	_, err = Epsilon(KindPLD, 1e-5, Schedule{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 1_000_000_000_000}) // trial 4.18
	check("1e12 steps", err)
	_, err = l.Epsilon(KindPLD, 1e-5)
	check("ledger", err)
	_, err = Epsilon(KindPLD, 1e-5, Schedule{SamplingRate: 0.01, NoiseMultiplier: 1e-9, Steps: 20, Prior: Gaussian{NoiseMultiplier: 1}})
	check("after a prior", err)
	_, _, err = CalibrateNoise(KindPLD, Budget{Epsilon: 1e6, Delta: 1e-5}, Schedule{SamplingRate: 0.01, Steps: 1000}) // trial 1.43 / 4.30
	check("calibrate ε=1e6", err)
	_, err = MaxSteps(KindPLD, Budget{Epsilon: 1e6, Delta: 1e-5}, Schedule{SamplingRate: 0.01, NoiseMultiplier: 1e-9})
	check("max steps", err)
	a := NewPLD(PLDOptions{MaxSize: 1 << 10})
	err = a.Compose(Composed{Events: []Event{Steps(0.01, 1, 10), Steps(0.1, 1, 10)}})
	check("composition", err)
	_, _, err = a.eventPMFs(SelfComposed{Event: Gaussian{1}, Count: math.MaxInt / 2}, 4)
	check("count overflow", err)
}

// TestNaNIsAnError: should an accountant's state or a search ever hold a
// NaN, ε and δ come back as an error wrapping ErrNumerical that names the
// composed events, never as a NaN with a nil error.
func TestNaNIsAnError(t *testing.T) {
	e := Steps(0.01, 1.5, 7)

	p := NewPLD(PLDOptions{})
	if err := p.Compose(e); err != nil {
		t.Fatal(err)
	}
	p.remove.probs[len(p.remove.probs)-1] = math.NaN()
	p.remove.inf = math.NaN()
	r := NewRDP(nil)
	if err := r.Compose(e); err != nil {
		t.Fatal(err)
	}
	for k := range r.rdp {
		r.rdp[k] = math.NaN()
	}
	for _, a := range []Accountant{p, r} {
		eps, err1 := a.Epsilon(1e-5)
		d, err2 := a.Delta(1)
		for _, err := range []error{err1, err2} {
			if !errors.Is(err, ErrNumerical) || !strings.Contains(err.Error(), "σ=1.5") || !strings.Contains(err.Error(), "n=7") {
				t.Errorf("%T: ε %v δ %v, error %v: want ErrNumerical naming %v", a, eps, d, err, e)
			}
		}
	}

	_, _, err := bisect(func(float64) (float64, error) { return math.NaN(), nil }, 1, 1, 2, 1e-3, Param{Name: "x", Lo: MinNoiseMultiplier, Hi: MaxNoiseMultiplier})
	if !errors.Is(err, ErrNumerical) {
		t.Errorf("calibration on a NaN ε: %v, want ErrNumerical", err)
	}

	s, err := newStepPLD(0.01, 1.5, PLDOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.add.inf = math.NaN()
	s.add.probs[0] = math.NaN()
	if eps, err := s.epsilon(7, 1e-5); !errors.Is(err, ErrNumerical) || !strings.Contains(err.Error(), "n=7") {
		t.Errorf("step PLD with a NaN: ε %v, %v", eps, err)
	}

	// describeEvents keeps a long history short.
	var log eventLog
	for i := range 10 {
		log.add(Step(0.01, float64(i+1)))
		log.add(Step(0.01, float64(i+1)))
	}
	if msg := describeEvents(log.events()); !strings.Contains(msg, "(10 events in all)") || strings.Count(msg, "SelfComposed") != maxDescribed {
		t.Errorf("describeEvents: %q", msg)
	}
}
