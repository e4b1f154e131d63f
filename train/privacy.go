package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	"dptrain/accounting"
)

// privacyBook is a run's one record of what it released: the ledger (what
// checkpoints store and ε is computed from) and the privacy journal (the
// durable, fsynced record that also survives a crash between
// checkpoints; see journalName). record writes an event to both before
// anything derived from the release can be written out, so that privacy
// is never under-counted.
type privacyBook struct {
	ledger  *accounting.Ledger
	journal *journal
	// step is the event of one DP-SGD step, Step(q, σ); prior the release
	// before training (nil if none), recorded priorCount times (more than
	// once after crashes before the first checkpoint in secure mode).
	step       accounting.Event
	prior      accounting.Event
	priorCount int64
	// maxSteps (with a target ε) is how many step events the budget allows
	// after the prior releases; 0 without a target.
	maxSteps int64
	// lost counts steps taken, lost in a crash and counted as spent.
	lost int64
	// replay (seeded mode) holds the journaled events after the newest
	// checkpoint: the re-run must release exactly these again.
	replay []journalEvent
	// replica: a rank other than 0 of a data-parallel run keeps the ledger
	// in memory only (the same events as rank 0's, which rank 0 journals
	// and checkpoints).
	replica bool
	logf    func(string, ...any)
}

func newPrivacyBook(p plan, logf func(string, ...any)) *privacyBook {
	b := &privacyBook{ledger: &accounting.Ledger{}, prior: p.Prior, maxSteps: p.MaxLedgerSteps, logf: logf}
	if p.Private() {
		b.step = p.stepEvent()
	}
	if p.Prior != nil {
		b.priorCount = 1
	}
	return b
}

// priorLen is how many ledger events precede the DP-SGD steps.
func (b *privacyBook) priorLen() int64 {
	if b.prior == nil {
		return 0
	}
	return b.priorCount
}

// priorEvent is everything released before the DP-SGD steps, as one event
// (nil if nothing).
func (b *privacyBook) priorEvent() accounting.Event {
	if b.prior == nil || b.priorCount <= 1 {
		return b.prior
	}
	return accounting.SelfComposed{Event: b.prior, Count: int(b.priorCount)}
}

// steps is the number of DP-SGD step events in the ledger.
func (b *privacyBook) steps() int64 { return int64(b.ledger.Len()) - b.priorLen() }

// exhausted reports whether the budget allows no further step.
func (b *privacyBook) exhausted() bool { return b.maxSteps > 0 && b.steps() >= b.maxSteps }

// epsilon is ε(δ) of the ledger under accountant kind.
func (b *privacyBook) epsilon(kind accounting.Kind, delta float64) (float64, error) {
	return b.ledger.Epsilon(kind, delta)
}

// record enters one release: ev in the ledger, then its journal line
// (fsynced), or in seeded mode while re-running steps lost in a crash, the
// check that it repeats the journaled one exactly. ev must be the event
// the mechanism reported for the release.
func (b *privacyBook) record(ev accounting.Event, count int, e journalEvent) error {
	if err := b.ledger.RecordN(ev, count); err != nil {
		return err
	}
	e.N = int64(b.ledger.Len())
	return b.journalRelease(e)
}

// journalRelease journals one release, or in seeded mode, while re-running
// steps lost in a crash, checks that it repeats the journaled one exactly.
func (b *privacyBook) journalRelease(e journalEvent) error {
	if b.replica {
		return nil
	}
	if len(b.replay) == 0 {
		return b.journal.append(e)
	}
	want := b.replay[0]
	b.replay = b.replay[1:]
	if want.Event == "" { // a line torn by the crash: contents unknown
		return nil
	}
	if want.N != e.N || want.Event != e.Event || want.Release != e.Release {
		return fmt.Errorf("seeded mode: the re-run of step %d released %s (ledger event %d), but before the interruption it released %s (event %d): the repeat is not bit-identical (another machine, library or thread-dependent kernel?), so it would be a second release of that step that no accountant covers; stopping before anything is written. Resume on the machine that took the step, or use a new --out "+newOutNote,
			e.Step, e.Release, e.N, want.Release, want.N)
	}
	return nil
}

// adopt replaces the ledger with a resumed checkpoint's, after checking
// that every event of it is one this run releases: the prior release
// first, if the run has one (more than once only after crashes before the
// first checkpoint), then DP-SGD steps Step(q, σ) only. The ledger's
// length alone would let an edited σ or q (with a recomputed manifest)
// lower ε.
func (b *privacyBook) adopt(led *accounting.Ledger, lost int64) error {
	count := b.priorCount
	for i, e := range led.Entries() {
		want := b.step
		if i == 0 && b.prior != nil {
			want = b.prior
			count = int64(e.Count)
		}
		if !reflect.DeepEqual(e.Event, want) {
			return fmt.Errorf("ledger entry %d is %s, but this run releases %s", i, e.Event, want)
		}
	}
	if b.prior != nil && led.Len() == 0 {
		return fmt.Errorf("ledger is empty, but this run releases %s before training", b.prior)
	}
	b.ledger, b.priorCount, b.lost = led, count, lost
	return nil
}

// close closes the journal.
func (b *privacyBook) close() error { return b.journal.Close() }

// journalFacts identify the training data in the journal's header.
type journalFacts struct {
	spec   string // train_data
	digest string // data.Digest of the training set
	n      int
	secure bool // noise: secure (lost releases are counted, not replayed)
}

// open opens the privacy journal in out after resume has restored the
// newest checkpoint (resumed) or found none, and reconciles it with the
// ledger: releases journaled after the newest checkpoint are counted as
// spent (secure mode) or replayed and checked (seeded mode).
func (b *privacyBook) open(out string, resumed bool, f journalFacts) error {
	path := filepath.Join(out, journalName)
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("privacy journal %s is a symbolic link: dptrain never reads or writes the journal through a link (someone may have planted it); remove it", path)
	}
	hdr, events, err := readJournal(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("privacy journal: %w", err)
	}
	present := err == nil
	if !resumed {
		return b.openFresh(path, present, hdr, events, f)
	}
	if !present {
		if b.step != nil {
			return fmt.Errorf("resume: %s is missing: the steps taken after the newest checkpoint cannot be counted, so ε would be under-counted; restore the journal, or use a new --out "+newOutNote, path)
		}
		b.journal, err = createJournal(path, journalHeader{Data: f.digest, Examples: f.n})
		return err
	}
	if hdr.Data != f.digest || hdr.Examples != f.n {
		return fmt.Errorf("resume: the training data %s changed since this run started (%d examples, %s; now %d examples, %s): a resumed run would train on other data than its ledger accounts for; use a new --out "+newOutNote, f.spec, hdr.Examples, hdr.Data, f.n, f.digest)
	}
	taken, recorded := int64(len(events)), int64(b.ledger.Len())
	if taken < recorded {
		return fmt.Errorf("resume: %s records %d releases, the checkpoint's ledger %d: the journal was truncated or replaced, so the steps taken after the checkpoint cannot be counted; restore it, or use a new --out "+newOutNote, path, taken, recorded)
	}
	if extra := taken - recorded; extra > 0 {
		if f.secure {
			if err := b.ledger.RecordN(b.step, int(extra)); err != nil {
				return err
			}
			b.lost += extra
			b.logf("secure mode: %d steps taken after the last checkpoint were lost; they are counted as spent (the re-run draws fresh batches and noise)", extra)
		} else {
			b.replay = events[recorded:]
			b.logf("seeded mode: the %d steps taken after the last checkpoint are re-run and checked bit for bit against the journal", extra)
		}
	}
	b.journal, err = appendJournal(path, taken)
	return err
}

// openFresh opens the journal of a run that found no checkpoint.
func (b *privacyBook) openFresh(path string, present bool, hdr *journalHeader, events []journalEvent, f journalFacts) error {
	var err error
	if !present || len(events) == 0 {
		b.journal, err = createJournal(path, journalHeader{Data: f.digest, Examples: f.n})
		return err
	}
	// Only data-normalisation releases (a crash before the step-0
	// checkpoint): the start is re-done, and they are counted (secure
	// mode: the new release is an independent one) or checked to repeat
	// bit for bit (seeded mode).
	for _, e := range events {
		if e.Event != "data_norm" || b.prior == nil || hdr.Data != f.digest || hdr.Examples != f.n {
			return fmt.Errorf("%s records %d releases of an earlier run in this folder, but no checkpoint of it is left: starting over would release again without counting them (privacy would be under-counted); restore the checkpoints, or use a new --out "+newOutNote, path, len(events))
		}
	}
	if f.secure {
		b.priorCount += int64(len(events))
		b.logf("secure mode: %d data-normalisation releases before an interruption were lost; they are counted as spent", len(events))
	} else if len(events) == 1 {
		b.replay = events
	} else {
		return fmt.Errorf("%s: seeded mode, but %d data-normalisation releases are journaled (want at most 1); use a new --out "+newOutNote, path, len(events))
	}
	b.journal, err = appendJournal(path, int64(len(events)))
	return err
}

// budgetEnd returns where a run with a target ε must stop, at step now
// with total steps planned: the last step the budget allows given what the
// ledger already holds (steps lost to interruptions and repeated prior
// releases included). It recomputes the allowance when the prior was
// released more than once.
func (b *privacyBook) budgetEnd(c Config, p plan, now, total int64) (int64, error) {
	if !c.IsPrivate() || c.TargetEpsilon == 0 {
		return total, nil
	}
	if b.priorCount > 1 {
		budget := accounting.Budget{Epsilon: c.TargetEpsilon, Delta: p.Delta}
		maxSteps, err := accounting.MaxSteps(p.Kind, budget, accounting.Schedule{SamplingRate: p.Q, NoiseMultiplier: p.Sigma, Prior: b.priorEvent()})
		if err != nil {
			return 0, fmt.Errorf("target_epsilon %g after %d data-normalisation releases: %w", c.TargetEpsilon, b.priorCount, err)
		}
		b.maxSteps = int64(maxSteps)
	}
	if end := now + max(b.maxSteps-b.steps(), 0); end < total {
		b.logf("budget: ε=%g with %d steps lost to interruptions (%d releases before training) allows %d steps; the run ends at step %d", c.TargetEpsilon, b.lost, b.priorLen(), b.maxSteps, end)
		return end, nil
	}
	return total, nil
}
