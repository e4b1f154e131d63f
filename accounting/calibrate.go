package accounting

import (
	"fmt"
	"math"
)

// Search range and precision of [CalibrateNoise].
const (
	// MaxNoiseMultiplier is the largest σ CalibrateNoise considers: a
	// target that σ = MaxNoiseMultiplier cannot meet is an error wrapping
	// [ErrUnreachable].
	MaxNoiseMultiplier = 1e4
	// MinNoiseMultiplier is the smallest σ CalibrateNoise returns; if even
	// this σ meets the target, it is returned.
	MinNoiseMultiplier = 1e-2
	// RDPCalibrationTolerance and PLDCalibrationTolerance are the relative
	// precisions of the σ that CalibrateNoise returns: it lies in
	// [σ*, σ*·(1+tol)] where σ* is the smallest σ meeting the target.
	RDPCalibrationTolerance = 1e-4
	PLDCalibrationTolerance = 1e-3
	// MaxStepsLimit caps [MaxSteps].
	MaxStepsLimit = 1 << 40
)

// ComputeEpsilon returns ε(δ) of steps DP-SGD steps with sampling rate q and
// noise multiplier σ, with the accountant kind "rdp" or "pld" (default
// settings).
func ComputeEpsilon(kind string, delta, samplingRate, sigma float64, steps int) (float64, error) {
	return stepsEpsilon(kind, delta, steps, Steps(samplingRate, sigma, steps))
}

// stepsEpsilon validates kind, δ and the step count, and returns ε(δ) of e
// (the steps, possibly after a prior event) from a fresh accountant.
func stepsEpsilon(kind string, delta float64, steps int, e Event) (float64, error) {
	if err := validateKind(kind); err != nil {
		return 0, err
	}
	if err := validateDelta(delta); err != nil {
		return 0, err
	}
	if err := validateCount(steps); err != nil {
		return 0, err
	}
	a, _ := New(kind)
	if err := a.Compose(e); err != nil {
		return 0, err
	}
	return a.Epsilon(delta)
}

func validateKind(kind string) error {
	if kind != KindRDP && kind != KindPLD {
		return fmt.Errorf("%w: accountant %q must be %q or %q", ErrInvalid, kind, KindRDP, KindPLD)
	}
	return nil
}

func validateTarget(eps float64) error {
	if !(eps > 0) || math.IsInf(eps, 1) {
		return fmt.Errorf("%w: target epsilon ε=%g must be finite and > 0", ErrInvalid, eps)
	}
	return nil
}

// CalibrateNoise returns the smallest noise multiplier σ (to the relative
// tolerance RDPCalibrationTolerance or PLDCalibrationTolerance) such that
// steps DP-SGD steps with sampling rate q are (targetEpsilon, δ)-DP under
// the accountant kind. The ε of the returned σ was computed and is at most
// the target: calibration never overshoots. A target that σ =
// MaxNoiseMultiplier cannot meet is an error wrapping [ErrUnreachable].
func CalibrateNoise(kind string, targetEpsilon, delta, samplingRate float64, steps int) (float64, error) {
	sigma, _, err := calibrate(kind, targetEpsilon, delta, samplingRate, steps)
	return sigma, err
}

// CalibrateNoiseEpsilon is [CalibrateNoise] that also returns the ε of the
// returned σ (≤ targetEpsilon).
func CalibrateNoiseEpsilon(kind string, targetEpsilon, delta, samplingRate float64, steps int) (sigma, epsilon float64, err error) {
	return calibrate(kind, targetEpsilon, delta, samplingRate, steps)
}

func calibrate(kind string, target, delta, q float64, steps int) (float64, float64, error) {
	if err := validateKind(kind); err != nil {
		return 0, 0, err
	}
	if err := validateTarget(target); err != nil {
		return 0, 0, err
	}
	if err := validateDelta(delta); err != nil {
		return 0, 0, err
	}
	if err := validateQ(q); err != nil {
		return 0, 0, err
	}
	if steps < 1 {
		return 0, 0, fmt.Errorf("%w: steps=%d must be >= 1 to calibrate a noise multiplier", ErrInvalid, steps)
	}
	eps := func(sigma float64) (float64, error) {
		return ComputeEpsilon(kind, delta, q, sigma, steps)
	}
	tol, guess, step := RDPCalibrationTolerance, 1.0, 2.0
	if kind == KindPLD {
		// PLD ε ≤ RDP ε (up to discretisation), so the RDP answer is a
		// near-miss upper guess; PLD typically needs 3–30% less noise.
		tol, step = PLDCalibrationTolerance, 1.25
		s, _, err := calibrate(KindRDP, target, delta, q, steps)
		switch {
		case err == nil:
			guess = s
		case errorsIs(err, ErrUnreachable):
			guess = MaxNoiseMultiplier
		default:
			return 0, 0, err
		}
	}
	sigma, e, err := bisectSigma(eps, target, guess, step, tol)
	if errorsIs(err, ErrTooLarge) {
		// The σ tried was small because the target is large.
		err = fmt.Errorf("calibrating σ for target ε=%g (a smaller target gives a larger σ): %w", target, err)
	}
	return sigma, e, err
}

// bisectSigma finds the smallest σ in [MinNoiseMultiplier,
// MaxNoiseMultiplier] with eps(σ) ≤ target, to relative tolerance tol,
// assuming eps is non-increasing: it brackets the answer by steps of the
// factor step from guess, then refines. It returns σ and eps(σ).
func bisectSigma(epsOf func(float64) (float64, error), target, guess, step, tol float64) (float64, float64, error) {
	// The accountants never return a NaN ε with a nil error; this guard
	// keeps a NaN from ever steering (or ending) the search regardless.
	eps := func(sigma float64) (float64, error) {
		e, err := epsOf(sigma)
		if err == nil && (math.IsNaN(e) || math.IsNaN(sigma)) {
			return 0, fmt.Errorf("%w: ε of noise multiplier σ=%g is NaN", ErrNumerical, sigma)
		}
		return e, err
	}
	guess = math.Min(math.Max(guess, MinNoiseMultiplier), MaxNoiseMultiplier)
	e, err := eps(guess)
	if err != nil {
		return 0, 0, err
	}
	// Invariant once bracketed: eps(lo) = eLo > target ≥ eps(hi) = eHi.
	var lo, hi, eLo, eHi float64
	if e <= target {
		hi, eHi = guess, e
		for {
			if hi <= MinNoiseMultiplier {
				return hi, eHi, nil
			}
			lo = math.Max(hi/step, MinNoiseMultiplier)
			if eLo, err = eps(lo); err != nil {
				return 0, 0, err
			}
			if eLo > target {
				break
			}
			hi, eHi = lo, eLo
		}
	} else {
		lo, eLo = guess, e
		for {
			if lo >= MaxNoiseMultiplier {
				return 0, 0, fmt.Errorf("%w: even noise multiplier σ=%g gives ε=%g > target %g",
					ErrUnreachable, float64(MaxNoiseMultiplier), eLo, target)
			}
			hi = math.Min(lo*step, MaxNoiseMultiplier)
			if eHi, err = eps(hi); err != nil {
				return 0, 0, err
			}
			if eHi <= target {
				break
			}
			lo, eLo = hi, eHi
		}
	}
	return refineSigma(eps, target, lo, hi, eLo, eHi, tol)
}

// refineSigma shrinks a bracket lo < hi with eps(lo) = eLo > target ≥
// eps(hi) = eHi until hi/lo ≤ 1+tol, and returns hi and eps(hi). It steps by
// the Illinois variant of regula falsi on (log σ, log ε − log target), in
// which ε is close to linear, so a handful of evaluations replace the
// log2(log(hi/lo)/tol) of bisection; it bisects when ε is 0 or infinite at
// an end, or after three steps that kept the same end (kinks of the RDP
// minimum over orders, PLD discretisation steps).
func refineSigma(eps func(float64) (float64, error), target, lo, hi, eLo, eHi, tol float64) (float64, float64, error) {
	lt := math.Log(target)
	wLo, wHi := math.Log(eLo)-lt, math.Log(eHi)-lt // weights: wLo > 0 ≥ wHi
	kept, run := 0, 0                              // end kept by the last steps (-1 lo, +1 hi), how often
	for hi/lo > 1+tol {
		width := math.Log(hi / lo)
		x := math.Log(lo) + width/2
		if run < 3 && !math.IsInf(wLo, 0) && !math.IsInf(wHi, 0) && wLo-wHi > 0 {
			x = math.Log(lo) + width*wLo/(wLo-wHi)
		}
		// Stay a quarter tolerance inside both ends, so that a step next to
		// the root also closes the bracket.
		margin := math.Min(math.Log1p(tol)/4, width/4)
		x = math.Min(math.Max(x, math.Log(lo)+margin), math.Log(hi)-margin)
		mid := math.Exp(x)
		em, err := eps(mid)
		if err != nil {
			return 0, 0, err
		}
		keep := +1 // the lo end is replaced, hi kept
		if em <= target {
			keep = -1
		}
		if keep == kept {
			run++
		} else {
			kept, run = keep, 1
		}
		if em <= target {
			hi, eHi, wHi = mid, em, math.Log(em)-lt
			if run >= 2 {
				wLo /= 2 // Illinois: the end kept twice loses weight
			}
		} else {
			lo, wLo = mid, math.Log(em)-lt
			if run >= 2 {
				wHi /= 2
			}
		}
		if run > 3 {
			run = 0
		}
	}
	return hi, eHi, nil
}

// MaxSteps returns the largest number of DP-SGD steps with sampling rate q
// and noise multiplier σ that stays (targetEpsilon, δ)-DP under the
// accountant kind (0 if not even one step does; capped at MaxStepsLimit).
func MaxSteps(kind string, targetEpsilon, delta, samplingRate, sigma float64) (int, error) {
	if err := validateKind(kind); err != nil {
		return 0, err
	}
	if err := validateTarget(targetEpsilon); err != nil {
		return 0, err
	}
	if err := validateDelta(delta); err != nil {
		return 0, err
	}
	if err := Step(samplingRate, sigma).Validate(); err != nil {
		return 0, err
	}
	var eps func(n int) (float64, error)
	switch kind {
	case KindRDP:
		// One RDP evaluation; ε(n) only rescales it.
		orders := defaultOrders
		r := make([]float64, len(orders))
		poissonGaussianRDP(r, orders, samplingRate, sigma)
		for k, v := range r {
			if math.IsNaN(v) {
				return 0, fmt.Errorf("%w: the RDP of %v at order %g is NaN", ErrNumerical, Step(samplingRate, sigma), orders[k])
			}
		}
		tmp := make([]float64, len(orders))
		eps = func(n int) (float64, error) {
			for k := range r {
				tmp[k] = float64(n) * r[k]
			}
			e, _ := rdpToEpsilon(orders, tmp, delta)
			if math.IsNaN(e) {
				return 0, nanError("RDP", fmt.Sprintf("ε(δ=%g)", delta), []Event{Steps(samplingRate, sigma, n)})
			}
			return e, nil
		}
	case KindPLD:
		s, err := newStepPLD(samplingRate, sigma, PLDOptions{})
		if err != nil {
			return 0, err
		}
		eps = func(n int) (float64, error) { return s.epsilon(n, delta) }
	}
	guess := 1
	if kind == KindPLD {
		// PLD ε ≤ RDP ε, so the RDP answer is a near-miss lower guess.
		g, err := MaxSteps(KindRDP, targetEpsilon, delta, samplingRate, sigma)
		if err != nil {
			return 0, err
		}
		guess = max(g, 1)
	}
	return searchSteps(eps, targetEpsilon, guess)
}

// searchSteps returns the largest n in [0, MaxStepsLimit] with eps(n) ≤
// target, for eps non-decreasing in n, starting the bracket at guess ≥ 1.
func searchSteps(eps func(int) (float64, error), target float64, guess int) (int, error) {
	ok := func(n int) (bool, error) {
		e, err := eps(n)
		return e <= target, err
	}
	var lo, hi int // invariant: ok(lo) (lo may be 0), !ok(hi)
	g, err := ok(guess)
	if err != nil {
		return 0, err
	}
	if g {
		lo = guess
		for {
			if lo >= MaxStepsLimit {
				return MaxStepsLimit, nil
			}
			hi = min(lo+lo/4+1, MaxStepsLimit)
			h, err := ok(hi)
			if err != nil {
				return 0, err
			}
			if !h {
				break
			}
			lo = hi
		}
	} else {
		hi = guess
		for {
			lo = hi * 4 / 5
			if lo == 0 {
				break
			}
			l, err := ok(lo)
			if err != nil {
				return 0, err
			}
			if l {
				break
			}
			hi = lo
		}
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		m, err := ok(mid)
		if err != nil {
			return 0, err
		}
		if m {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// StepsForEpochs returns the number of steps of epochs passes over
// datasetSize examples with expected batch batchSize:
// ceil(epochs·datasetSize/batchSize).
func StepsForEpochs(datasetSize, batchSize int, epochs float64) (int, error) {
	if err := validateDataset(datasetSize, batchSize); err != nil {
		return 0, err
	}
	if !(epochs >= 0) || math.IsInf(epochs, 1) {
		return 0, fmt.Errorf("%w: epochs=%g must be finite and >= 0", ErrInvalid, epochs)
	}
	x := epochs * float64(datasetSize) / float64(batchSize)
	if r := math.Round(x); math.Abs(x-r) <= 1e-9*math.Max(1, x) {
		x = r // an exact integer up to rounding: don't ceil a 1e-16 excess
	}
	if x > MaxStepsLimit {
		return 0, fmt.Errorf("%w: epochs=%g is %g steps (limit %d)", ErrInvalid, epochs, x, MaxStepsLimit)
	}
	return int(math.Ceil(x)), nil
}

// SamplingRate returns batchSize/datasetSize, the Poisson sampling rate of
// an expected batch of batchSize out of datasetSize examples.
func SamplingRate(datasetSize, batchSize int) (float64, error) {
	if err := validateDataset(datasetSize, batchSize); err != nil {
		return 0, err
	}
	return float64(batchSize) / float64(datasetSize), nil
}

func validateDataset(n, b int) error {
	if n < 1 {
		return fmt.Errorf("%w: dataset size N=%d must be >= 1", ErrInvalid, n)
	}
	if b < 1 || b > n {
		return fmt.Errorf("%w: batch size B=%d must be in [1, dataset size %d]", ErrInvalid, b, n)
	}
	return nil
}

// MaxEpochs returns the largest whole number of epochs (steps =
// ceil(epochs·N/B), sampling rate B/N) that stays (targetEpsilon, δ)-DP
// with noise multiplier σ.
func MaxEpochs(kind string, targetEpsilon, delta float64, datasetSize, batchSize int, sigma float64) (int, error) {
	q, err := SamplingRate(datasetSize, batchSize)
	if err != nil {
		return 0, err
	}
	steps, err := MaxSteps(kind, targetEpsilon, delta, q, sigma)
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
