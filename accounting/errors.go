package accounting

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalid is wrapped by every error about a meaningless input (q, σ,
	// δ, ε, counts, kinds); the message names the quantity.
	ErrInvalid = errors.New("invalid privacy parameter")
	// ErrUnsupported is wrapped when an accountant cannot handle an event.
	ErrUnsupported = errors.New("unsupported event")
	// ErrUnreachable is wrapped when no σ in the search range (up to
	// [MaxNoiseMultiplier]) meets a target ε.
	ErrUnreachable = errors.New("privacy target unreachable")
	// ErrTooLarge is wrapped when a PLD computation would need more memory
	// than allowed (see [PLDOptions.MaxSize]).
	ErrTooLarge = errors.New("privacy loss distribution too large")
)

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
