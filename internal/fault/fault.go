// Package fault breaks the DP-SGD mechanism on purpose, for the tests that
// check that a privacy audit catches a broken release (dptrain audit,
// issue 17). Nothing outside tests sets these: the zero value is the
// correct mechanism, and a run with any fault set says so in its audit
// result (Active).
//
// Each fault changes what is released while the ledger keeps recording
// the correct mechanism's event, exactly the kind of bug an audit exists
// to find:
//   - NoClip: per-example gradients are added unclipped (clip factor 1);
//   - NoiseScale: the noise drawn has standard deviation NoiseScale·σC;
//   - LedgerSigmaScale: the event recorded for a step has noise multiplier
//     LedgerSigmaScale·σ while σ is drawn (the claimed ε is too small);
//   - CanariesEveryStep: the audit's included canaries join every logical
//     batch instead of being Poisson-sampled.
package fault

// Mechanism is a set of faults; the zero value is none.
type Mechanism struct {
	NoClip            bool
	NoiseScale        float64 // 0: none (the noise is σC)
	LedgerSigmaScale  float64 // 0: none (the ledger records σ)
	CanariesEveryStep bool
}

// Injected is the faults in force (tests only).
var Injected Mechanism

// Active reports whether any fault is set.
func Active() bool { return Injected != Mechanism{} }
