package accounting

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// testAccountant is the conformance suite that every Accountant of the
// package runs (dp_accounting's PrivacyAccountantTest): equivalent
// compositions give the same ε (to the relative tolerance tol: an FFT power
// and repeated convolutions differ by truncated mass), composition is all
// or nothing, unsupported events are refused bare and nested, with an
// error naming the sub-event, and an empty accountant is perfectly private.
func testAccountant(t *testing.T, newAcc func() Accountant, tol float64) {
	c := conformance{newAcc: newAcc, tol: tol}
	t.Run("Empty", c.empty)
	t.Run("InputErrors", c.inputErrors)
	t.Run("SelfComposedIsRepeated", c.selfComposedIsRepeated)
	t.Run("ComposedIsSequence", c.composedIsSequence)
	t.Run("Unsupported", c.unsupported)
	t.Run("AllOrNothing", c.allOrNothing)
}

// conformance holds what the checks of testAccountant share.
type conformance struct {
	newAcc func() Accountant
	tol    float64
}

// compose returns a with events composed, failing the test on an error.
func (c conformance) compose(t *testing.T, a Accountant, events ...Event) Accountant {
	t.Helper()
	for _, e := range events {
		if err := a.Compose(e); err != nil {
			t.Fatalf("Compose(%v): %v", e, err)
		}
	}
	return a
}

// same checks that a and b give the same positive ε(δ), to c.tol.
func (c conformance) same(t *testing.T, what string, a, b Accountant, deltas ...float64) {
	t.Helper()
	for _, delta := range deltas {
		ea, errA := a.Epsilon(delta)
		eb, errB := b.Epsilon(delta)
		if errA != nil || errB != nil {
			t.Fatalf("%s δ=%g: %v, %v", what, delta, errA, errB)
		}
		if !(ea > 0) || math.Abs(ea-eb) > c.tol*ea {
			t.Errorf("%s δ=%g: ε = %.15g and %.15g", what, delta, ea, eb)
		}
	}
}

func (c conformance) empty(t *testing.T) {
	a := c.newAcc()
	for _, noop := range []Event{Composed{}, Steps(0.1, 1, 0), SelfComposed{Event: Gaussian{1}, Count: 0}} {
		c.compose(t, a, noop)
	}
	if e, err := a.Epsilon(1e-5); err != nil || e != 0 {
		t.Errorf("empty accountant ε = %v, %v", e, err)
	}
	if d, err := a.Delta(0); err != nil || d != 0 {
		t.Errorf("empty accountant δ(0) = %v, %v", d, err)
	}
}

func (c conformance) inputErrors(t *testing.T) {
	a := c.newAcc()
	for _, d := range []float64{0, 1, -1e-5, 2, math.NaN()} {
		if _, err := a.Epsilon(d); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "delta") {
			t.Errorf("Epsilon(%v) = %v", d, err)
		}
	}
	for _, e := range []float64{-1, math.Inf(1), math.NaN()} {
		if _, err := a.Delta(e); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "epsilon") {
			t.Errorf("Delta(%v) = %v", e, err)
		}
	}
}

func (c conformance) selfComposedIsRepeated(t *testing.T) {
	for _, x := range []struct {
		q, sigma float64
		n        int
	}{{0.02, 0.9, 7}, {0.05, 1, 6}} {
		a := c.compose(t, c.newAcc(), Steps(x.q, x.sigma, x.n))
		b := c.newAcc()
		for range x.n {
			c.compose(t, b, Step(x.q, x.sigma))
		}
		c.same(t, Steps(x.q, x.sigma, x.n).String(), a, b, 1e-4, 1e-6)
	}
	// A SelfComposed of a sequence is the sequence repeated.
	seq := Composed{Events: []Event{Gaussian{4}, Step(0.05, 1)}}
	a := c.compose(t, c.newAcc(), SelfComposed{Event: seq, Count: 3})
	b := c.compose(t, c.newAcc(), seq, seq, seq)
	c.same(t, "SelfComposed(Composed)", a, b, 1e-5)
}

func (c conformance) composedIsSequence(t *testing.T) {
	parts := []Event{Steps(0.01, 1.1, 20), Gaussian{5}, Steps(0.05, 2, 3)}
	a := c.compose(t, c.newAcc(), Composed{Events: parts})
	b := c.compose(t, c.newAcc(), parts...)
	c.same(t, "Composed", a, b, 1e-5, 1e-8)
}

func (c conformance) unsupported(t *testing.T) {
	bad := []struct {
		e     Event
		cause string // the sub-event the error must name
	}{
		{foreign{}, "foreign"},
		{PoissonSampled{SamplingRate: 0.1, Event: Step(0.1, 1)}, "PoissonSampled(q=0.1, PoissonSampled"}, // nested sampling
		{PoissonSampled{SamplingRate: 0.1, Event: Steps(0.1, 1, 2)}, "PoissonSampled(q=0.1, SelfComposed"},
		{PoissonSampled{SamplingRate: 0.1, Event: foreign{}}, "foreign"},
	}
	nests := []struct {
		name string
		nest func(Event) Event
	}{
		{"bare", func(e Event) Event { return e }},
		{"in Composed", func(e Event) Event { return Composed{Events: []Event{Step(0.01, 1), e}} }},
		{"in SelfComposed", func(e Event) Event { return SelfComposed{Event: e, Count: 3} }},
	}
	a := c.compose(t, c.newAcc(), Steps(0.01, 2, 10))
	before, _ := a.Epsilon(1e-5)
	if !a.Supports(Composed{Events: []Event{Gaussian{3}, Steps(0.01, 2, 10)}}) {
		t.Error("does not support the Gaussian family")
	}
	for _, b := range bad {
		for _, n := range nests {
			e := n.nest(b.e)
			if a.Supports(e) {
				t.Errorf("%s: claims to support %v", n.name, e)
			}
			err := a.Compose(e)
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s: Compose(%v) = %v, want ErrUnsupported", n.name, e, err)
				continue
			}
			if n.name != "bare" && !strings.Contains(err.Error(), "caused by sub-event "+b.cause) {
				t.Errorf("%s: error %q does not name the sub-event %q", n.name, err, b.cause)
			}
		}
	}
	if after, _ := a.Epsilon(1e-5); after != before {
		t.Errorf("refused compositions changed ε from %v to %v", before, after)
	}
}

func (c conformance) allOrNothing(t *testing.T) {
	a := c.compose(t, c.newAcc(), Steps(0.01, 2, 10))
	before, _ := a.Epsilon(1e-5)
	// An invalid part anywhere rejects the whole event, naming the part.
	bad := Composed{Events: []Event{Steps(0.01, 1, 1000), Step(0.1, -1)}}
	err := a.Compose(bad)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "σ=-1") || !strings.Contains(err.Error(), "caused by sub-event PoissonSampled(q=0.1, Gaussian(σ=-1)) of Composed(") {
		t.Errorf("Compose(invalid) = %v, want ErrInvalid naming σ=-1 and its sub-event", err)
	}
	if err := a.Compose(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("Compose(nil) = %v", err)
	}
	if err := a.Compose(Composed{Events: []Event{Gaussian{1}, nil}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "event 1 is nil") {
		t.Errorf("Compose(Composed with nil) = %v", err)
	}
	if after, _ := a.Epsilon(1e-5); after != before {
		t.Errorf("failed compositions changed ε from %v to %v", before, after)
	}
}

func TestRDPConformance(t *testing.T) {
	testAccountant(t, func() Accountant { return NewRDP(nil) }, 1e-12)
}

func TestPLDConformance(t *testing.T) {
	testAccountant(t, func() Accountant { return NewPLD(PLDOptions{}) }, 1e-7)
}

func TestKinds(t *testing.T) {
	for _, name := range Kinds() {
		k, err := ParseKind(name)
		if err != nil || string(k) != name {
			t.Errorf("ParseKind(%q) = %q, %v", name, k, err)
		}
		if _, err := New(k); err != nil {
			t.Errorf("New(%q): %v", k, err)
		}
	}
	if got := Kinds(); len(got) != 2 || got[0] != string(KindRDP) || got[1] != string(KindPLD) {
		t.Errorf("Kinds() = %q", got)
	}
	for _, bad := range []string{"prv", "", "RDP"} {
		if _, err := ParseKind(bad); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"`+bad+`"`) || !strings.Contains(err.Error(), `"rdp" or "pld"`) {
			t.Errorf("ParseKind(%q) = %v", bad, err)
		}
		if _, err := New(Kind(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("New(%q) = %v", bad, err)
		}
	}
}

// TestSentinelPrefix: every sentinel error says which package it is from.
func TestSentinelPrefix(t *testing.T) {
	for _, err := range []error{ErrInvalid, ErrUnsupported, ErrUnreachable, ErrTooLarge, ErrNumerical} {
		if !strings.HasPrefix(err.Error(), "accounting: ") {
			t.Errorf("%q lacks the package prefix", err)
		}
	}
}
