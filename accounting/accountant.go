package accounting

import "fmt"

// Kind names an accountant: [KindRDP] or [KindPLD]. Configuration and
// command lines hold kinds as strings; [ParseKind] turns one into a Kind,
// with an error naming the allowed values.
type Kind string

// The accountant kinds accepted by [New], the calibration functions and
// [Ledger.Epsilon].
const (
	// KindRDP is the Rényi-DP accountant [RDP] (default orders).
	KindRDP Kind = "rdp"
	// KindPLD is the privacy-loss-distribution accountant [PLD] (default
	// discretisation).
	KindPLD Kind = "pld"
)

// Kinds returns the names of the accountant kinds, in the order of the
// package documentation: "rdp", "pld".
func Kinds() []string { return []string{string(KindRDP), string(KindPLD)} }

// ParseKind returns the Kind named s ("rdp" or "pld"), or an error wrapping
// [ErrInvalid] that names s and the allowed values.
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if err := k.validate(); err != nil {
		return "", err
	}
	return k, nil
}

func (k Kind) validate() error {
	if k != KindRDP && k != KindPLD {
		return fmt.Errorf("%w: accountant %q must be %q or %q", ErrInvalid, string(k), KindRDP, KindPLD)
	}
	return nil
}

// Accountant composes events and converts the result to (ε, δ) guarantees.
type Accountant interface {
	// Supports reports whether the accountant can compose e (all of it).
	Supports(e Event) bool
	// Compose adds e to the accountant's state. On error (invalid or
	// unsupported event, or, for PLD, too large) the state is unchanged; the
	// error names the part of e (sub-event) that failed.
	Compose(e Event) error
	// Epsilon returns the smallest ε such that the composition so far is
	// (ε, δ)-DP; +Inf when the accountant can prove no finite ε.
	Epsilon(delta float64) (float64, error)
	// Delta returns the smallest δ such that the composition so far is
	// (ε, δ)-DP.
	Delta(epsilon float64) (float64, error)
}

// New returns a fresh accountant of the given kind: [KindRDP] (default
// orders) or [KindPLD] (default discretisation).
func New(kind Kind) (Accountant, error) {
	switch kind {
	case KindRDP:
		return NewRDP(nil), nil
	case KindPLD:
		return NewPLD(PLDOptions{}), nil
	default:
		return nil, kind.validate()
	}
}

// check validates e and reports whether supports(e) holds, as one error.
// When the failure lies in a part of e, the error names that sub-event
// (the innermost part that fails), as dp_accounting's "caused by subevent".
func check(e Event, supports func(Event) bool, name string) error {
	if e == nil {
		return fmt.Errorf("%w: nil event", ErrInvalid)
	}
	if err := e.Validate(); err != nil {
		if sub, inner := subevent(e, func(x Event) bool { return x.Validate() != nil }, false); inner {
			return fmt.Errorf("%w (caused by sub-event %v of %v)", err, sub, e)
		}
		return err
	}
	if !supports(e) {
		msg := fmt.Sprintf("the %s accountant cannot compose %v", name, e)
		if sub, inner := subevent(e, func(x Event) bool { return !supports(x) }, true); inner {
			msg += fmt.Sprintf(" (caused by sub-event %v)", sub)
		}
		return fmt.Errorf("%w: %s", ErrUnsupported, msg)
	}
	return nil
}

// subevent returns the innermost part of e for which bad holds, given that
// it holds for e, and whether that is a proper part of e: it descends into
// the first non-nil child for which bad holds until there is none (into
// the event of a PoissonSampled only if sampled; else a DP-SGD step is one
// part). A PoissonSampled whose inner event is fine alone (e.g. a nested
// sampling) is itself the culprit.
func subevent(e Event, bad func(Event) bool, sampled bool) (sub Event, inner bool) {
	for ; ; inner = true {
		var children []Event
		switch x := e.(type) {
		case PoissonSampled:
			if sampled {
				children = []Event{x.Event}
			}
		case SelfComposed:
			children = []Event{x.Event}
		case Composed:
			children = x.Events
		}
		next := Event(nil)
		for _, c := range children {
			if c != nil && bad(c) {
				next = c
				break
			}
		}
		if next == nil {
			return e, inner
		}
		e = next
	}
}

// supportsGaussianFamily reports whether e is built only from Gaussian,
// PoissonSampled(Gaussian), SelfComposed and Composed: what both accountants
// of this package handle (as dp_accounting's do).
func supportsGaussianFamily(e Event) bool {
	switch x := e.(type) {
	case Gaussian:
		return true
	case PoissonSampled:
		_, ok := x.Event.(Gaussian)
		return ok
	case SelfComposed:
		return x.Event != nil && supportsGaussianFamily(x.Event)
	case Composed:
		for _, s := range x.Events {
			if s == nil || !supportsGaussianFamily(s) {
				return false
			}
		}
		return true
	default:
		return false
	}
}
