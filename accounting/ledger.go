package accounting

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// LedgerEntry is Count consecutive occurrences of Event.
type LedgerEntry struct {
	Event Event
	Count int
}

// Ledger is the ordered record of the events of a run, stored in
// checkpoints; ε is always recomputed from it. Consecutive identical events
// are merged into one entry, so recording one DP-SGD step per step costs
// O(1) time and the ledger stays as long as the number of changes of (q, σ).
// The zero value is an empty ledger. A Ledger is not safe for concurrent
// use.
type Ledger struct {
	entries []LedgerEntry
}

// Record appends one occurrence of e (validated first; an invalid event is
// not recorded).
func (l *Ledger) Record(e Event) error { return l.RecordN(e, 1) }

// RecordN appends n ≥ 0 occurrences of e.
func (l *Ledger) RecordN(e Event, n int) error {
	if e == nil {
		return fmt.Errorf("%w: nil event", ErrInvalid)
	}
	if err := validateCount(n); err != nil {
		return err
	}
	if k := len(l.entries) - 1; k >= 0 && equalEvents(l.entries[k].Event, e) {
		// Same as the last entry, hence already validated: the O(1) path
		// taken by every step but the first of a run.
		l.entries[k].Count += n
		return nil
	}
	if err := e.Validate(); err != nil {
		return err
	}
	if _, err := toJSONEvent(e); err != nil { // only serialisable events
		return err
	}
	if n == 0 {
		return nil
	}
	l.entries = append(l.entries, LedgerEntry{Event: e, Count: n})
	return nil
}

// Entries returns a copy of the entries, oldest first.
func (l *Ledger) Entries() []LedgerEntry { return append([]LedgerEntry(nil), l.entries...) }

// Len returns the total number of recorded events (the sum of counts).
func (l *Ledger) Len() int {
	n := 0
	for _, e := range l.entries {
		n += e.Count
	}
	return n
}

// Event returns the whole ledger as one event: identical entries anywhere
// in the ledger are merged (composition commutes), each as one
// SelfComposed, so that a PLD accountant self-composes each distinct step
// once instead of step by step.
func (l *Ledger) Event() Composed {
	var c Composed
	counts := []int{}
	for _, e := range l.entries {
		found := false
		for i, s := range c.Events {
			if equalEvents(s, e.Event) {
				counts[i] += e.Count
				found = true
				break
			}
		}
		if !found {
			c.Events = append(c.Events, e.Event)
			counts = append(counts, e.Count)
		}
	}
	for i := range c.Events {
		c.Events[i] = SelfComposed{Event: c.Events[i], Count: counts[i]}
	}
	return c
}

// Accountant returns a fresh accountant of the kind with the whole ledger
// composed into it.
func (l *Ledger) Accountant(kind Kind) (Accountant, error) {
	a, err := New(kind)
	if err != nil {
		return nil, err
	}
	if err := a.Compose(l.Event()); err != nil {
		return nil, err
	}
	return a, nil
}

// Epsilon recomputes ε(δ) of the whole ledger from scratch with a fresh
// accountant of the kind.
func (l *Ledger) Epsilon(kind Kind, delta float64) (float64, error) {
	if err := validateDelta(delta); err != nil {
		return 0, err
	}
	a, err := l.Accountant(kind)
	if err != nil {
		return 0, err
	}
	return a.Epsilon(delta)
}

// Delta recomputes δ(ε) of the whole ledger.
func (l *Ledger) Delta(kind Kind, epsilon float64) (float64, error) {
	if err := validateEpsilon(epsilon); err != nil {
		return 0, err
	}
	a, err := l.Accountant(kind)
	if err != nil {
		return 0, err
	}
	return a.Delta(epsilon)
}

// ledgerFormat and ledgerVersion identify the JSON encoding.
const (
	ledgerFormat  = "dptrain.accounting.ledger"
	ledgerVersion = 1
)

type jsonLedger struct {
	Format  string            `json:"format"`
	Version int               `json:"version"`
	Entries []jsonLedgerEntry `json:"entries"`
}

type jsonLedgerEntry struct {
	Count int        `json:"count"`
	Event *jsonEvent `json:"event"`
}

// MarshalJSON encodes the ledger as
//
//	{"format":"dptrain.accounting.ledger","version":1,
//	 "entries":[{"count":1369,"event":{…}}, …]}
func (l *Ledger) MarshalJSON() ([]byte, error) {
	out := jsonLedger{Format: ledgerFormat, Version: ledgerVersion, Entries: make([]jsonLedgerEntry, len(l.entries))}
	for i, e := range l.entries {
		j, err := toJSONEvent(e.Event)
		if err != nil {
			return nil, err
		}
		out.Entries[i] = jsonLedgerEntry{Count: e.Count, Event: j}
	}
	return json.Marshal(out)
}

// UnmarshalJSON decodes and validates a ledger written by MarshalJSON,
// replacing l's contents only on success. Errors name the offending entry
// and field.
func (l *Ledger) UnmarshalJSON(data []byte) error {
	var j jsonLedger
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if j.Format != ledgerFormat {
		return fmt.Errorf("ledger: format %q, want %q", j.Format, ledgerFormat)
	}
	if j.Version != ledgerVersion {
		return fmt.Errorf("ledger: version %d not supported (want %d)", j.Version, ledgerVersion)
	}
	var nl Ledger
	for i, je := range j.Entries {
		path := fmt.Sprintf("ledger: entries[%d]", i)
		if je.Count < 1 {
			return fmt.Errorf("%s.count = %d, must be >= 1", path, je.Count)
		}
		e, err := fromJSONEvent(je.Event, path+".event")
		if err != nil {
			return err
		}
		if err := e.Validate(); err != nil {
			return fmt.Errorf("%s.event: %w", path, err)
		}
		// Appended as stored (no merging), so a round trip is exact.
		nl.entries = append(nl.entries, LedgerEntry{Event: e, Count: je.Count})
	}
	*l = nl
	return nil
}
