package accounting

import (
	"fmt"
	"math"
)

// Search range and precision of the calibration functions.
const (
	// MaxNoiseMultiplier is the largest σ CalibrateNoise considers (the
	// default upper end of a [Param]): a target that σ =
	// MaxNoiseMultiplier cannot meet is an *[UnreachableError].
	MaxNoiseMultiplier = 1e4
	// MinNoiseMultiplier is the smallest σ CalibrateNoise returns (the
	// default lower end of a [Param]); if even this σ meets the target, it
	// is returned.
	MinNoiseMultiplier = 1e-2
	// RDPCalibrationTolerance and PLDCalibrationTolerance are the relative
	// precisions of what [Calibrate] returns: x lies in [x*, x*·(1+tol)]
	// where x* is the smallest x meeting the target.
	RDPCalibrationTolerance = 1e-4
	PLDCalibrationTolerance = 1e-3
	// MaxStepsLimit caps [MaxSteps] and [CalibrateCount].
	MaxStepsLimit = 1 << 40
)

// noiseParam names σ in the errors of [CalibrateNoise].
const noiseParam = "noise multiplier σ"

// tolerance is the relative precision of [Calibrate] under the kind.
func (k Kind) tolerance() float64 {
	if k == KindPLD {
		return PLDCalibrationTolerance
	}
	return RDPCalibrationTolerance
}

// Param describes the parameter x that [Calibrate] searches for: a
// quantity (such as a noise multiplier) of which ε is a non-increasing
// function.
type Param struct {
	// Name names x in error messages, e.g. "noise multiplier σ"; "" means
	// "x".
	Name string
	// Lo and Hi bound the search, 0 < Lo < Hi < +Inf. Zero means
	// MinNoiseMultiplier and MaxNoiseMultiplier.
	Lo, Hi float64
	// Guess is where the search starts (clamped to [Lo, Hi]). With a
	// guess, the answer is bracketed in steps of a factor 1.25 (a guess is
	// meant to be close); zero means none: the search starts at 1 and
	// brackets by doubling.
	Guess float64
}

// resolve applies p's defaults and validates it.
func (p Param) resolve() (Param, error) {
	if p.Name == "" {
		p.Name = "x"
	}
	if p.Lo == 0 {
		p.Lo = MinNoiseMultiplier
	}
	if p.Hi == 0 {
		p.Hi = MaxNoiseMultiplier
	}
	if !(p.Lo > 0 && p.Lo < p.Hi) || math.IsInf(p.Hi, 1) {
		return p, fmt.Errorf("%w: search range [%g, %g] of %s must satisfy 0 < Lo < Hi < +Inf", ErrInvalid, p.Lo, p.Hi, p.Name)
	}
	if !(p.Guess >= 0) || math.IsInf(p.Guess, 1) {
		return p, fmt.Errorf("%w: guess %s=%g must be finite and >= 0", ErrInvalid, p.Name, p.Guess)
	}
	return p, nil
}

// Calibrate returns the smallest x in [p.Lo, p.Hi] (to the relative
// tolerance RDPCalibrationTolerance or PLDCalibrationTolerance of the
// kind) such that event(x), composed by a fresh accountant of the kind, is
// (b.Epsilon, b.Delta)-DP, and that ε. It is dp_accounting's
// calibrate_dp_mechanism for a parameter of which ε is non-increasing
// (such as a noise multiplier). The ε returned was computed and is at most
// b.Epsilon: calibration never overshoots. If even x = p.Hi does not meet
// the budget, the error is an *[UnreachableError]; if x = p.Lo does, p.Lo
// is returned.
func Calibrate(kind Kind, b Budget, event func(x float64) Event, p Param) (x, eps float64, err error) {
	if err := kind.validate(); err != nil {
		return 0, 0, err
	}
	if err := b.Validate(); err != nil {
		return 0, 0, err
	}
	if p, err = p.resolve(); err != nil {
		return 0, 0, err
	}
	epsOf := func(x float64) (float64, error) { return eventEpsilon(kind, b.Delta, event(x)) }
	guess, step := 1.0, 2.0
	if p.Guess != 0 {
		guess, step = p.Guess, 1.25
	}
	x, eps, err = bisect(epsOf, b.Epsilon, guess, step, kind.tolerance(), p)
	if errorsIs(err, ErrTooLarge) {
		// The x tried was small because the target is large.
		err = fmt.Errorf("calibrating %s for target ε=%g (a smaller target gives a larger one): %w", p.Name, b.Epsilon, err)
	}
	return x, eps, err
}

// CalibrateCount returns the largest count n in [0, MaxStepsLimit] such
// that event(n), composed by a fresh accountant of the kind, is
// (b.Epsilon, b.Delta)-DP (0 if not even n = 1 is), for ε non-decreasing
// in n (such as a number of steps): dp_accounting's calibrate_dp_mechanism
// with discrete=True. The search starts at guess (values < 1 mean 1).
func CalibrateCount(kind Kind, b Budget, event func(n int) Event, guess int) (int, error) {
	if err := kind.validate(); err != nil {
		return 0, err
	}
	if err := b.Validate(); err != nil {
		return 0, err
	}
	eps := func(n int) (float64, error) { return eventEpsilon(kind, b.Delta, event(n)) }
	return searchSteps(eps, b.Epsilon, max(guess, 1))
}

// CalibrateNoise returns the smallest noise multiplier σ (to the tolerance
// of [Calibrate]) such that s, with σ for s.NoiseMultiplier (which is
// ignored), is b-DP under the kind, and that ε (never above b.Epsilon). It
// reads s.SamplingRate, s.Steps (≥ 1) and s.Prior. σ is searched in
// [MinNoiseMultiplier, MaxNoiseMultiplier]; a budget that σ =
// MaxNoiseMultiplier cannot meet (or that s.Prior alone spends) is an
// *[UnreachableError].
func CalibrateNoise(kind Kind, b Budget, s Schedule) (sigma, eps float64, err error) {
	if err := kind.validate(); err != nil {
		return 0, 0, err
	}
	if err := b.Validate(); err != nil {
		return 0, 0, err
	}
	if err := validateQ(s.SamplingRate); err != nil {
		return 0, 0, err
	}
	if s.Steps < 1 {
		return 0, 0, fmt.Errorf("%w: steps=%d must be >= 1 to calibrate a noise multiplier", ErrInvalid, s.Steps)
	}
	withSigma := func(sigma float64) Event {
		t := s
		t.NoiseMultiplier = sigma
		return t.Event()
	}
	if s.Prior == nil {
		return calibrateSteps(kind, b, withSigma)
	}
	// Without the prior the steps need less noise: a lower bound and a
	// close guess (the prior is usually a small part of the budget).
	alone := s
	alone.Prior = nil
	s0, _, err := CalibrateNoise(kind, b, alone)
	if err != nil {
		return 0, 0, err
	}
	if err := s.Prior.Validate(); err != nil {
		return 0, 0, err
	}
	sigma, eps, err = Calibrate(kind, b, withSigma, Param{Name: noiseParam, Guess: s0})
	if err != nil {
		return 0, 0, fmt.Errorf("after %v: %w", s.Prior, err)
	}
	return sigma, eps, nil
}

// calibrateSteps is CalibrateNoise of DP-SGD steps without a prior. PLD
// starts from the RDP answer: PLD ε ≤ RDP ε (up to discretisation), so it
// is a near-miss upper guess; PLD typically needs 3–30% less noise.
func calibrateSteps(kind Kind, b Budget, withSigma func(float64) Event) (float64, float64, error) {
	p := Param{Name: noiseParam}
	if kind == KindPLD {
		s, _, err := calibrateSteps(KindRDP, b, withSigma)
		switch {
		case err == nil:
			p.Guess = s
		case errorsIs(err, ErrUnreachable):
			p.Guess = MaxNoiseMultiplier
		default:
			return 0, 0, err
		}
	}
	return Calibrate(kind, b, withSigma, p)
}

// MaxSteps returns the largest number of DP-SGD steps with s.SamplingRate
// and s.NoiseMultiplier that, after s.Prior, stays b-DP under the kind (0
// if not even one step does; capped at MaxStepsLimit). s.Steps is ignored.
func MaxSteps(kind Kind, b Budget, s Schedule) (int, error) {
	n0, err := maxSteps(kind, b, s.SamplingRate, s.NoiseMultiplier)
	if err != nil || s.Prior == nil {
		return n0, err
	}
	if err := s.Prior.Validate(); err != nil {
		return 0, err
	}
	withSteps := func(n int) Event {
		t := s
		t.Steps = n
		return t.Event()
	}
	// The prior only adds privacy loss: n0 is an upper bound.
	return CalibrateCount(kind, b, withSteps, n0)
}

// maxSteps is MaxSteps without a prior, by closed paths: one RDP
// evaluation that ε(n) only rescales, or one PLD step self-composed n
// times.
func maxSteps(kind Kind, b Budget, q, sigma float64) (int, error) {
	if err := kind.validate(); err != nil {
		return 0, err
	}
	if err := b.Validate(); err != nil {
		return 0, err
	}
	if err := Step(q, sigma).Validate(); err != nil {
		return 0, err
	}
	var eps func(n int) (float64, error)
	guess := 1
	switch kind {
	case KindRDP:
		var err error
		if eps, err = rdpStepsEpsilon(q, sigma, b.Delta); err != nil {
			return 0, err
		}
	case KindPLD:
		s, err := newStepPLD(q, sigma, PLDOptions{})
		if err != nil {
			return 0, err
		}
		eps = func(n int) (float64, error) { return s.epsilon(n, b.Delta) }
		// PLD ε ≤ RDP ε, so the RDP answer is a near-miss lower guess.
		g, err := maxSteps(KindRDP, b, q, sigma)
		if err != nil {
			return 0, err
		}
		guess = max(g, 1)
	}
	return searchSteps(eps, b.Epsilon, guess)
}

// rdpStepsEpsilon returns ε(δ) of n steps as a function of n, from one RDP
// evaluation at the default orders.
func rdpStepsEpsilon(q, sigma, delta float64) (func(n int) (float64, error), error) {
	orders := defaultOrders
	r := make([]float64, len(orders))
	poissonGaussianRDP(r, orders, q, sigma)
	for k, v := range r {
		if math.IsNaN(v) {
			return nil, fmt.Errorf("%w: the RDP of %v at order %g is NaN", ErrNumerical, Step(q, sigma), orders[k])
		}
	}
	tmp := make([]float64, len(orders))
	return func(n int) (float64, error) {
		for k := range r {
			tmp[k] = float64(n) * r[k]
		}
		e, _ := rdpToEpsilon(orders, tmp, delta)
		if math.IsNaN(e) {
			return 0, nanError("RDP", fmt.Sprintf("ε(δ=%g)", delta), []Event{Steps(q, sigma, n)})
		}
		return e, nil
	}, nil
}

// MaxEpochs returns the largest whole number of epochs (steps =
// ceil(epochs·N/B), sampling rate B/N) that stays b-DP with noise
// multiplier sigma under the kind.
func MaxEpochs(kind Kind, b Budget, datasetSize, batchSize int, sigma float64) (int, error) {
	q, err := SamplingRate(datasetSize, batchSize)
	if err != nil {
		return 0, err
	}
	steps, err := MaxSteps(kind, b, Schedule{SamplingRate: q, NoiseMultiplier: sigma})
	if err != nil {
		return 0, err
	}
	e := int(float64(steps) * q)
	for e > 0 {
		s, err := StepsForEpochs(datasetSize, batchSize, float64(e))
		if err != nil {
			return 0, err
		}
		if s <= steps {
			break
		}
		e--
	}
	for {
		s, err := StepsForEpochs(datasetSize, batchSize, float64(e+1))
		if err != nil || s > steps {
			return e, nil
		}
		e++
	}
}
