package accounting

import "fmt"

// Runs that release something else about the training data before their
// DP-SGD steps (e.g. the private feature statistics of a data-normalisation
// layer) spend part of the budget on that prior event. The functions below
// are CalibrateNoise and MaxSteps for such runs: the ε they bound is that
// of prior composed with the steps, recomputed from scratch by a fresh
// accountant for every candidate (slower than the closed paths for plain
// DP-SGD, but the same arithmetic a Ledger holding both would do).

// EpsilonAfter returns ε(δ) of prior (may be nil) followed by steps DP-SGD
// steps with sampling rate q and noise multiplier σ.
func EpsilonAfter(kind string, delta, samplingRate, sigma float64, steps int, prior Event) (float64, error) {
	if prior == nil {
		return ComputeEpsilon(kind, delta, samplingRate, sigma, steps)
	}
	return stepsEpsilon(kind, delta, steps, Composed{Events: []Event{prior, Steps(samplingRate, sigma, steps)}})
}

// CalibrateNoiseAfter returns the smallest noise multiplier σ (to the
// tolerance of CalibrateNoise) such that prior followed by steps DP-SGD
// steps with sampling rate q is (targetEpsilon, δ)-DP, and that ε (never
// above the target). With a nil prior it is CalibrateNoiseEpsilon. A prior
// that alone spends the target is an error wrapping [ErrUnreachable].
func CalibrateNoiseAfter(kind string, targetEpsilon, delta, samplingRate float64, steps int, prior Event) (sigma, epsilon float64, err error) {
	// Without the prior the steps need less noise: a lower bound and a
	// close guess (the prior is usually a small part of the budget).
	s0, e0, err := calibrate(kind, targetEpsilon, delta, samplingRate, steps)
	if err != nil || prior == nil {
		return s0, e0, err
	}
	if err := prior.Validate(); err != nil {
		return 0, 0, err
	}
	eps := func(sigma float64) (float64, error) {
		return EpsilonAfter(kind, delta, samplingRate, sigma, steps, prior)
	}
	tol := RDPCalibrationTolerance
	if kind == KindPLD {
		tol = PLDCalibrationTolerance
	}
	sigma, epsilon, err = bisectSigma(eps, targetEpsilon, s0, 1.25, tol)
	if err != nil {
		return 0, 0, fmt.Errorf("after %v: %w", prior, err)
	}
	return sigma, epsilon, nil
}

// MaxStepsAfter returns the largest number of DP-SGD steps with sampling
// rate q and noise multiplier σ that, after prior, stays (targetEpsilon,
// δ)-DP (0 if not even one step does). With a nil prior it is MaxSteps.
func MaxStepsAfter(kind string, targetEpsilon, delta, samplingRate, sigma float64, prior Event) (int, error) {
	n0, err := MaxSteps(kind, targetEpsilon, delta, samplingRate, sigma)
	if err != nil || prior == nil {
		return n0, err
	}
	if err := prior.Validate(); err != nil {
		return 0, err
	}
	eps := func(n int) (float64, error) {
		return EpsilonAfter(kind, delta, samplingRate, sigma, n, prior)
	}
	// The prior only adds privacy loss: n0 is an upper bound.
	return searchSteps(eps, targetEpsilon, max(n0, 1))
}
