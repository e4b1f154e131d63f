package accounting

import (
	"fmt"
	"math"
	"strings"
)

// Event describes a differentially private computation, after
// dp_accounting's DpEvent. The concrete events of this package are
// [Gaussian], [PoissonSampled], [SelfComposed] and [Composed]; accountants
// report other implementations as unsupported.
// Ledgers in checkpoints store these events, so they follow the evolution
// rules of the package documentation: no event or parameter is ever
// removed or changes meaning; a new mechanism is a new event type.
type Event interface {
	// Validate reports whether the event's parameters are meaningful, with
	// an error naming the offending quantity.
	Validate() error
	// String describes the event for people.
	String() string
}

// Gaussian is the Gaussian mechanism on a function of L2 sensitivity 1 with
// noise standard deviation NoiseMultiplier (σ).
type Gaussian struct {
	NoiseMultiplier float64
}

// PoissonSampled is Event applied to a Poisson subsample of the data in
// which each record is included independently with probability
// SamplingRate (q).
type PoissonSampled struct {
	SamplingRate float64
	Event        Event
}

// SelfComposed is Event repeated Count times.
type SelfComposed struct {
	Event Event
	Count int
}

// Composed is the sequential composition of Events.
type Composed struct {
	Events []Event
}

// Step returns the event of one DP-SGD step: the Gaussian mechanism with
// noise multiplier sigma on a Poisson sample with rate q.
func Step(q, sigma float64) PoissonSampled {
	return PoissonSampled{SamplingRate: q, Event: Gaussian{NoiseMultiplier: sigma}}
}

// Steps returns the event of n identical DP-SGD steps.
func Steps(q, sigma float64, n int) SelfComposed {
	return SelfComposed{Event: Step(q, sigma), Count: n}
}

// Validate implements [Event].
func (g Gaussian) Validate() error { return validateSigma(g.NoiseMultiplier) }

// Validate implements [Event].
func (p PoissonSampled) Validate() error {
	if err := validateQ(p.SamplingRate); err != nil {
		return err
	}
	if p.Event == nil {
		return fmt.Errorf("%w: PoissonSampled has no inner event", ErrInvalid)
	}
	return p.Event.Validate()
}

// Validate implements [Event].
func (s SelfComposed) Validate() error {
	if err := validateCount(s.Count); err != nil {
		return err
	}
	if s.Event == nil {
		return fmt.Errorf("%w: SelfComposed has no inner event", ErrInvalid)
	}
	return s.Event.Validate()
}

// Validate implements [Event].
func (c Composed) Validate() error {
	for i, e := range c.Events {
		if e == nil {
			return fmt.Errorf("%w: Composed event %d is nil", ErrInvalid, i)
		}
		if err := e.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func (g Gaussian) String() string {
	return fmt.Sprintf("Gaussian(σ=%g)", g.NoiseMultiplier)
}

func (p PoissonSampled) String() string {
	return fmt.Sprintf("PoissonSampled(q=%g, %v)", p.SamplingRate, p.Event)
}

func (s SelfComposed) String() string {
	return fmt.Sprintf("SelfComposed(%v, n=%d)", s.Event, s.Count)
}

func (c Composed) String() string {
	parts := make([]string, len(c.Events))
	for i, e := range c.Events {
		parts[i] = fmt.Sprint(e)
	}
	return "Composed(" + strings.Join(parts, ", ") + ")"
}

func validateQ(q float64) error {
	if !(q > 0 && q <= 1) { // also rejects NaN
		return fmt.Errorf("%w: sampling rate q=%g must be in (0, 1]", ErrInvalid, q)
	}
	return nil
}

func validateSigma(sigma float64) error {
	if !(sigma > 0) || math.IsInf(sigma, 1) {
		return fmt.Errorf("%w: noise multiplier σ=%g must be finite and > 0", ErrInvalid, sigma)
	}
	return nil
}

func validateDelta(delta float64) error {
	if !(delta > 0 && delta < 1) {
		return fmt.Errorf("%w: delta δ=%g must be in (0, 1)", ErrInvalid, delta)
	}
	return nil
}

func validateEpsilon(eps float64) error {
	if !(eps >= 0) || math.IsInf(eps, 1) {
		return fmt.Errorf("%w: epsilon ε=%g must be finite and >= 0", ErrInvalid, eps)
	}
	return nil
}

func validateCount(n int) error {
	if n < 0 {
		return fmt.Errorf("%w: steps (count) n=%d must be >= 0", ErrInvalid, n)
	}
	return nil
}

// equalEvents reports whether a and b describe the same computation
// structurally (same types, same parameters, same order).
func equalEvents(a, b Event) bool {
	switch x := a.(type) {
	case Gaussian:
		y, ok := b.(Gaussian)
		return ok && x == y
	case PoissonSampled:
		y, ok := b.(PoissonSampled)
		return ok && x.SamplingRate == y.SamplingRate && equalEvents(x.Event, y.Event)
	case SelfComposed:
		y, ok := b.(SelfComposed)
		return ok && x.Count == y.Count && equalEvents(x.Event, y.Event)
	case Composed:
		y, ok := b.(Composed)
		if !ok || len(x.Events) != len(y.Events) {
			return false
		}
		for i := range x.Events {
			if !equalEvents(x.Events[i], y.Events[i]) {
				return false
			}
		}
		return true
	default:
		return false
	}
}
