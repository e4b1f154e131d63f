package accounting

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestRefCalibration: dp_accounting's calibration points (bisection to 1e-4
// absolute, returning the upper end): ours is within 2e-4 of theirs, meets
// the target, and a σ 2·tol smaller does not.
func TestRefCalibration(t *testing.T) {
	r := loadRef(t)
	for _, c := range r.CalibrationPoints {
		q, _ := SamplingRate(c.DatasetSize, c.BatchSize)
		sigma, eps, err := CalibrateNoise(c.Accountant, Budget{Epsilon: c.TargetEpsilon, Delta: c.Delta}, Schedule{SamplingRate: q, Steps: c.Steps})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(sigma-c.NoiseMultiplier) > 2e-4 {
			t.Errorf("target %g: σ = %.8g, dp_accounting %.8g", c.TargetEpsilon, sigma, c.NoiseMultiplier)
		}
		check, _ := Epsilon(c.Accountant, c.Delta, Schedule{SamplingRate: q, NoiseMultiplier: sigma, Steps: c.Steps})
		if eps != check || eps > c.TargetEpsilon {
			t.Errorf("target %g: σ = %g has ε = %g (reported %g)", c.TargetEpsilon, sigma, check, eps)
		}
		if e, _ := Epsilon(c.Accountant, c.Delta, Schedule{SamplingRate: q, NoiseMultiplier: sigma / (1 + 2*RDPCalibrationTolerance), Steps: c.Steps}); e <= c.TargetEpsilon {
			t.Errorf("target %g: σ = %g is not the smallest: σ/(1+2tol) has ε = %g", c.TargetEpsilon, sigma, e)
		}
	}
}

// TestCalibrationNeverOvershoots on random RDP problems: ε(σ) ≤ target and
// σ is minimal to the stated tolerance.
func TestCalibrationNeverOvershoots(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 25 {
		q := math.Exp(rng.Float64() * math.Log(1e-4)) // 1e-4 … 1
		steps := 1 + rng.IntN(20000)
		target := math.Exp(rng.Float64()*math.Log(100)) / 5 // 0.2 … 20
		delta := math.Pow(10, -3-4*rng.Float64())
		sigma, _, err := CalibrateNoise(KindRDP, Budget{Epsilon: target, Delta: delta}, Schedule{SamplingRate: q, Steps: steps})
		if errors.Is(err, ErrUnreachable) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		e, _ := Epsilon(KindRDP, delta, Schedule{SamplingRate: q, NoiseMultiplier: sigma, Steps: steps})
		if e > target {
			t.Errorf("case %d (q=%g T=%d δ=%g target %g): σ = %g overshoots, ε = %g", i, q, steps, delta, target, sigma, e)
		}
		if sigma > MinNoiseMultiplier {
			if e2, _ := Epsilon(KindRDP, delta, Schedule{SamplingRate: q, NoiseMultiplier: sigma / (1 + 2*RDPCalibrationTolerance), Steps: steps}); e2 <= target {
				t.Errorf("case %d: σ = %g not minimal (σ/(1+2tol) has ε = %g ≤ %g)", i, sigma, e2, target)
			}
		}
	}
}

func TestCalibratePLD(t *testing.T) {
	q, steps, delta, target := 256.0/60000, 2344, 1e-5, 3.0
	sigma, eps, err := CalibrateNoise(KindPLD, Budget{Epsilon: target, Delta: delta}, Schedule{SamplingRate: q, Steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	if eps > target {
		t.Errorf("PLD σ = %g overshoots: ε = %g", sigma, eps)
	}
	if e, _ := Epsilon(KindPLD, delta, Schedule{SamplingRate: q, NoiseMultiplier: sigma / (1 + 2*PLDCalibrationTolerance), Steps: steps}); e <= target {
		t.Errorf("PLD σ = %g not minimal: σ/(1+2tol) has ε = %g", sigma, e)
	}
	// PLD is tighter, so it needs less noise than RDP for the same target.
	rdpSigma, _, _ := CalibrateNoise(KindRDP, Budget{Epsilon: target, Delta: delta}, Schedule{SamplingRate: q, Steps: steps})
	if sigma >= rdpSigma {
		t.Errorf("PLD σ = %g not below RDP σ = %g", sigma, rdpSigma)
	}
}

func TestCalibrateErrors(t *testing.T) {
	cases := []struct {
		kind             Kind
		target, delta, q float64
		steps            int
		wantIs           error
		wantText         string
	}{
		{KindRDP, 1e-6, 1e-5, 1, 1000000, ErrUnreachable, "σ=10000"},
		{KindRDP, 1, 1e-5, 1.5, 100, ErrInvalid, "q=1.5"},
		{KindRDP, 1, 0, 0.1, 100, ErrInvalid, "delta"},
		{KindRDP, -1, 1e-5, 0.1, 100, ErrInvalid, "target epsilon"},
		{KindRDP, 1, 1e-5, 0.1, 0, ErrInvalid, "steps=0"},
		{"moments", 1, 1e-5, 0.1, 100, ErrInvalid, `"moments"`},
	}
	for _, c := range cases {
		_, _, err := CalibrateNoise(c.kind, Budget{Epsilon: c.target, Delta: c.delta}, Schedule{SamplingRate: c.q, Steps: c.steps})
		if !errors.Is(err, c.wantIs) || !strings.Contains(err.Error(), c.wantText) {
			t.Errorf("%+v: error %v", c, err)
		}
	}
	// A target so loose that the smallest σ searched meets it.
	if s, _, err := CalibrateNoise(KindRDP, Budget{Epsilon: 1e6, Delta: 1e-5}, Schedule{SamplingRate: 1e-4, Steps: 1}); err != nil || s != MinNoiseMultiplier {
		t.Errorf("loose target: σ = %v, %v; want MinNoiseMultiplier", s, err)
	}
}

func TestMaxSteps(t *testing.T) {
	kinds := []Kind{KindRDP}
	if !testing.Short() {
		kinds = append(kinds, KindPLD)
	}
	for _, kind := range kinds {
		for _, c := range []struct{ target, delta, q, sigma float64 }{{2, 1e-5, 0.01, 1}, {8, 1e-5, 0.004, 0.8}} {
			n, err := MaxSteps(kind, Budget{Epsilon: c.target, Delta: c.delta}, Schedule{SamplingRate: c.q, NoiseMultiplier: c.sigma})
			if err != nil {
				t.Fatal(err)
			}
			in, _ := Epsilon(kind, c.delta, Schedule{SamplingRate: c.q, NoiseMultiplier: c.sigma, Steps: n})
			out, _ := Epsilon(kind, c.delta, Schedule{SamplingRate: c.q, NoiseMultiplier: c.sigma, Steps: n + 1})
			if n < 1 || in > c.target || out <= c.target {
				t.Errorf("%s %+v: MaxSteps = %d with ε(n) = %g, ε(n+1) = %g", kind, c, n, in, out)
			}
		}
	}
	if n, err := MaxSteps(KindRDP, Budget{Epsilon: 0.01, Delta: 1e-5}, Schedule{SamplingRate: 1, NoiseMultiplier: 0.5}); err != nil || n != 0 {
		t.Errorf("not even one step: %d, %v", n, err)
	}
	if _, err := MaxSteps(KindRDP, Budget{Epsilon: 1, Delta: 1e-5}, Schedule{SamplingRate: 0.1, NoiseMultiplier: 0}); !errors.Is(err, ErrInvalid) {
		t.Errorf("σ = 0: %v", err)
	}
}

func TestMaxEpochsAndSteps(t *testing.T) {
	N, B := 60000, 256
	e, err := MaxEpochs(KindRDP, Budget{Epsilon: 3, Delta: 1e-5}, N, B, 1.1)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := SamplingRate(N, B)
	stepsIn, _ := StepsForEpochs(N, B, float64(e))
	stepsOut, _ := StepsForEpochs(N, B, float64(e+1))
	in, _ := Epsilon(KindRDP, 1e-5, Schedule{SamplingRate: q, NoiseMultiplier: 1.1, Steps: stepsIn})
	out, _ := Epsilon(KindRDP, 1e-5, Schedule{SamplingRate: q, NoiseMultiplier: 1.1, Steps: stepsOut})
	if e < 1 || in > 3 || out <= 3 {
		t.Errorf("MaxEpochs = %d: ε(%d steps) = %g, ε(%d steps) = %g", e, stepsIn, in, stepsOut, out)
	}
	for _, c := range []struct {
		n, b   int
		epochs float64
		want   int
	}{
		{1281167, 65536, 70, 1369},
		{1281167, 4096, 10, 3128},
		{60000, 250, 1, 240},
		{60000, 250, 0.5, 120},
		{60000, 256, 0.1, 24},
		{10, 3, 1.0 / 3, 2},
	} {
		got, err := StepsForEpochs(c.n, c.b, c.epochs)
		if err != nil || got != c.want {
			t.Errorf("StepsForEpochs(%d, %d, %g) = %d, %v; want %d", c.n, c.b, c.epochs, got, err, c.want)
		}
	}
	for _, c := range [][3]float64{{0, 1, 1}, {10, 11, 1}, {10, 0, 1}, {10, 2, -1}} {
		if _, err := StepsForEpochs(int(c[0]), int(c[1]), c[2]); !errors.Is(err, ErrInvalid) {
			t.Errorf("StepsForEpochs%v: %v", c, err)
		}
	}
}

// TestGenericCalibrators: CalibrateNoise and MaxSteps are Calibrate and
// CalibrateCount over the schedule's event (for RDP the closed path of
// MaxSteps is the same arithmetic), and the failures are typed.
func TestGenericCalibrators(t *testing.T) {
	b := Budget{Epsilon: 2, Delta: 1e-5}
	s := Schedule{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 500}
	withSigma := func(sigma float64) Event { return Steps(s.SamplingRate, sigma, s.Steps) }
	x, ex, err1 := Calibrate(KindRDP, b, withSigma, Param{Name: noiseParam})
	sigma, eps, err2 := CalibrateNoise(KindRDP, b, s)
	if err1 != nil || err2 != nil || x != sigma || ex != eps {
		t.Errorf("Calibrate σ=%v ε=%v (%v), CalibrateNoise σ=%v ε=%v (%v)", x, ex, err1, sigma, eps, err2)
	}
	withSteps := func(n int) Event { return Steps(s.SamplingRate, s.NoiseMultiplier, n) }
	n1, err1 := CalibrateCount(KindRDP, b, withSteps, 0)
	n2, err2 := MaxSteps(KindRDP, b, s)
	if err1 != nil || err2 != nil || n1 != n2 || n1 < 1 {
		t.Errorf("CalibrateCount = %d (%v), MaxSteps = %d (%v)", n1, err1, n2, err2)
	}

	// A narrower range: the lower end when it already meets the budget, an
	// *UnreachableError naming the parameter at the upper end.
	if x, _, err := Calibrate(KindRDP, b, withSigma, Param{Lo: 5, Hi: 6}); err != nil || x != 5 {
		t.Errorf("range [5, 6]: x = %v, %v; want 5", x, err)
	}
	_, _, err := Calibrate(KindRDP, b, withSigma, Param{Name: "σ'", Lo: 0.1, Hi: 0.2})
	var u *UnreachableError
	if !errors.As(err, &u) || u.X != 0.2 || u.Param != "σ'" || u.Target != 2 || !(u.Epsilon > 2) || !strings.Contains(err.Error(), "σ'=0.2") {
		t.Errorf("range [0.1, 0.2]: %v, want an *UnreachableError at σ'=0.2", err)
	}
	for _, p := range []Param{{Lo: -1}, {Lo: 2, Hi: 1}, {Hi: math.Inf(1)}, {Guess: -1}, {Guess: math.NaN()}} {
		if _, _, err := Calibrate(KindRDP, b, withSigma, p); !errors.Is(err, ErrInvalid) {
			t.Errorf("Param %+v: %v, want ErrInvalid", p, err)
		}
	}
	if _, _, err := Calibrate("prv", b, withSigma, Param{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("kind prv: %v", err)
	}
	if _, err := CalibrateCount(KindRDP, Budget{Epsilon: 1}, withSteps, 1); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "delta") {
		t.Errorf("CalibrateCount with δ = 0: %v", err)
	}
}
