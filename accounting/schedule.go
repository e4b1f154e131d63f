package accounting

import (
	"fmt"
	"math"
)

// Budget is a privacy target: (Epsilon, Delta)-DP. Its fields are named
// so that ε and δ, both small positive floats, cannot be swapped unseen.
type Budget struct {
	// Epsilon is the target ε, finite and > 0.
	Epsilon float64
	// Delta is δ, in (0, 1).
	Delta float64
}

// Validate reports whether the budget is meaningful: an error wrapping
// [ErrInvalid] names ε or δ otherwise.
func (b Budget) Validate() error {
	if err := validateTarget(b.Epsilon); err != nil {
		return err
	}
	return validateDelta(b.Delta)
}

func validateTarget(eps float64) error {
	if !(eps > 0) || math.IsInf(eps, 1) {
		return fmt.Errorf("%w: target epsilon ε=%g must be finite and > 0", ErrInvalid, eps)
	}
	return nil
}

// Schedule is a DP-SGD run as the accountants see it (Abadi et al. 2016,
// Algorithm 1): T steps, each the Gaussian mechanism with noise multiplier
// σ on a Poisson sample with rate q, optionally after a prior release.
// Each function that takes a Schedule says which fields it reads (the one
// it solves for is ignored).
type Schedule struct {
	// SamplingRate is q = B/N, in (0, 1]: each example joins each step's
	// batch independently with this probability.
	SamplingRate float64
	// NoiseMultiplier is σ, finite and > 0: the noise standard deviation
	// divided by the clipping norm (the L2 sensitivity).
	NoiseMultiplier float64
	// Steps is T ≥ 0, the number of DP-SGD steps.
	Steps int
	// Prior is released about the same data before the steps (e.g. the
	// private feature statistics of a data-normalisation layer); nil if
	// nothing is.
	Prior Event
}

// Event returns the schedule as one event: Steps(q, σ, T), preceded by
// Prior when there is one (Composed{Prior, Steps(q, σ, T)}).
func (s Schedule) Event() Event {
	steps := Steps(s.SamplingRate, s.NoiseMultiplier, s.Steps)
	if s.Prior == nil {
		return steps
	}
	return Composed{Events: []Event{s.Prior, steps}}
}

// Epsilon returns ε(δ) of the schedule (Prior, then T steps with q and σ)
// under a fresh accountant of the kind (default settings).
func Epsilon(kind Kind, delta float64, s Schedule) (float64, error) {
	if err := kind.validate(); err != nil {
		return 0, err
	}
	if err := validateDelta(delta); err != nil {
		return 0, err
	}
	if err := validateCount(s.Steps); err != nil {
		return 0, err
	}
	return eventEpsilon(kind, delta, s.Event())
}

// eventEpsilon returns ε(δ) of e from a fresh accountant of the (valid)
// kind.
func eventEpsilon(kind Kind, delta float64, e Event) (float64, error) {
	a, _ := New(kind)
	if err := a.Compose(e); err != nil {
		return 0, err
	}
	return a.Epsilon(delta)
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
