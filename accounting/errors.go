package accounting

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrInvalid is wrapped by every error about a meaningless input (q, σ,
	// δ, ε, counts, kinds); the message names the quantity.
	ErrInvalid = errors.New("accounting: invalid privacy parameter")
	// ErrUnsupported is wrapped when an accountant cannot handle an event.
	ErrUnsupported = errors.New("accounting: unsupported event")
	// ErrUnreachable is wrapped when no value in the search range of a
	// calibration (for σ: up to [MaxNoiseMultiplier]) meets a target ε; the
	// error is then an *[UnreachableError].
	ErrUnreachable = errors.New("accounting: privacy target unreachable")
	// ErrTooLarge is wrapped when a PLD computation would need more memory
	// than allowed (see [PLDOptions.MaxSize]). The message gives, once, what a
	// user can do instead (the RDP accountant, more noise, fewer steps).
	ErrTooLarge = errors.New("accounting: privacy loss distribution too large")
	// ErrNumerical is wrapped when an accountant's arithmetic produced a
	// NaN: no ε or δ is reported then (a NaN is never returned with a nil
	// error). The message names the event or accountant concerned.
	ErrNumerical = errors.New("accounting: privacy accounting failed numerically")
)

// tooLargeAdvice ends every ErrTooLarge message: what a user of dptrain can
// change (the PLD's discretisation interval is not a setting of the
// command line or the config).
const tooLargeAdvice = "use accountant: rdp (config) / --accountant rdp (CLI), or a larger noise multiplier or fewer steps"

// tooLarge returns an error wrapping ErrTooLarge with the formatted detail
// and tooLargeAdvice. Every ErrTooLarge of the package is made here, and
// none is wrapped in another, so the advice appears once.
func tooLarge(format string, args ...any) error {
	return fmt.Errorf("%w: %s; %s", ErrTooLarge, fmt.Sprintf(format, args...), tooLargeAdvice)
}

// maxDescribed bounds how many events an error message lists.
const maxDescribed = 4

// describeEvents names the events (the first few of a long list) for an
// error message.
func describeEvents(events []Event) string {
	switch len(events) {
	case 0:
		return "no events"
	case 1:
		return events[0].String()
	}
	var b strings.Builder
	for i, e := range events {
		if i == maxDescribed {
			fmt.Fprintf(&b, ", … (%d events in all)", len(events))
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.String())
	}
	return b.String()
}

// nanError is the ErrNumerical error of an accountant (name) whose
// quantity (e.g. "ε(δ=1e-05)") came out NaN after composing events.
func nanError(name, quantity string, events []Event) error {
	return fmt.Errorf("%w: the %s accountant's %s is NaN after %s", ErrNumerical, name, quantity, describeEvents(events))
}

// UnreachableError is the error of [Calibrate] (and so of [CalibrateNoise])
// when even the end of the search range does not meet the budget, as
// dp_accounting's NoBracketIntervalFoundError. It wraps [ErrUnreachable].
type UnreachableError struct {
	Param   string  // what was searched, e.g. "noise multiplier σ"
	X       float64 // the end of the search range (e.g. MaxNoiseMultiplier)
	Epsilon float64 // ε at X
	Target  float64 // the budget's ε
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("%v: even %s=%g gives ε=%g > target %g", ErrUnreachable, e.Param, e.X, e.Epsilon, e.Target)
}

// Unwrap returns ErrUnreachable.
func (e *UnreachableError) Unwrap() error { return ErrUnreachable }

// OrdersError is the panic value of [NewRDP] given invalid orders: a
// programming error, not bad data.
type OrdersError struct {
	Order float64
}

func (e *OrdersError) Error() string {
	return fmt.Sprintf("accounting: RDP order %g must be finite and > 1", e.Order)
}

// DiscretizationError is the panic value of [NewPLD] given a negative or
// non-finite discretisation interval.
type DiscretizationError struct {
	Interval float64
}

func (e *DiscretizationError) Error() string {
	return fmt.Sprintf("accounting: PLD discretization interval %g must be finite and > 0 (0 = default)", e.Interval)
}

// eventLog is what an accountant has composed, for its error messages:
// consecutive identical events are merged, so composing step by step keeps
// it short.
type eventLog []LedgerEntry

func (l *eventLog) add(e Event) {
	if k := len(*l) - 1; k >= 0 && equalEvents((*l)[k].Event, e) {
		(*l)[k].Count++
		return
	}
	*l = append(*l, LedgerEntry{Event: e, Count: 1})
}

func (l eventLog) events() []Event {
	out := make([]Event, len(l))
	for i, x := range l {
		out[i] = x.Event
		if x.Count > 1 {
			out[i] = SelfComposed{Event: x.Event, Count: x.Count}
		}
	}
	return out
}
