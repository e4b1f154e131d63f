// Package accounting turns a DP-SGD training run into a privacy promise: it
// describes what a run did as differential-privacy events, composes them
// with a Rényi-DP (RDP) or privacy-loss-distribution (PLD) accountant, and
// answers the questions users ask (ε for a δ, δ for an ε, the smallest noise
// multiplier for a budget, how many steps fit a budget). It uses the
// standard library only, so a user computing ε needs nothing else.
//
// # Events
//
// Events follow Google's dp_accounting: [Gaussian] (the Gaussian mechanism
// with noise multiplier σ, sensitivity 1), [PoissonSampled] (an event run on
// a Poisson subsample with rate q), [SelfComposed] (an event repeated n
// times) and [Composed] (a sequence of events). One DP-SGD step is
// PoissonSampled{q, Gaussian{σ}}; a run of T identical steps is
// SelfComposed{that, T}. Adjacency is add-or-remove-one.
//
// # Accountants
//
// [RDP] computes the Rényi divergence of the Poisson-subsampled Gaussian
// (Mironov, Talwar, Zhang 2019) at a set of orders (dp_accounting's default
// set unless given), exactly at integer orders and by a series at fractional
// orders, in log space, and converts to (ε, δ) with the improved conversion
// of Balle et al. 2020 / Canonne, Kamath, Steinke 2020. It mirrors
// dp_accounting 0.6 to about 1e-9 relative (see rdp_math.go for the choice
// made at fractional orders).
//
// [PLD] discretises the privacy loss distribution of each event (pessimistic
// "connect the dots", Doroshenko et al. 2022), composes by FFT, and reads ε(δ)
// or δ(ε) off the result; the reported ε is an upper bound up to the
// discretisation interval ([PLDOptions]). It is the tighter of the two and is
// what training uses by default; RDP is reported alongside for comparison
// with published work.
//
// Composition is all or nothing: an accountant that cannot handle an event
// (or part of one) returns an error and is left unchanged.
//
// # Calibration and budgets
//
// [CalibrateNoise] finds the smallest σ whose ε is at most a target (it never
// returns a σ whose ε exceeds the target); [MaxSteps] and [MaxEpochs] answer
// how long a run may last at a given σ.
//
// Calibration searches σ in [MinNoiseMultiplier, MaxNoiseMultiplier] by
// bracketing and an Illinois (regula falsi) refinement on (log σ, log ε), to
// a relative tolerance of 1e-4 (RDP) or 1e-3 (PLD). Typical costs on a
// shared 2-core VM: RDP ε of any number of steps ≈ 1 ms, RDP calibration
// ≈ 12 ms, PLD ε of 10⁴ steps ≈ 0.2 s, PLD calibration ≈ 1–3 s (see
// bench_test.go).
//
// # Ledger
//
// A [Ledger] records the events of a run (consecutive identical steps are
// merged into one entry, so recording is O(1)), serialises to JSON for
// checkpoints, and recomputes ε from scratch on demand.
//
// Invalid inputs (q ∉ (0, 1], σ ≤ 0, δ ∉ (0, 1), negative counts, unsupported
// events, unreachable targets) are errors that name the quantity, never
// panics; misuse of the Go API itself (e.g. RDP orders ≤ 1) panics with a
// typed value. Every finite σ > 0 is accepted: σ² is never formed (it
// overflows beyond 1.3e154), so a huge σ gives ε = 0 or a tiny ε, and a tiny
// σ a huge or infinite ε (RDP) or an error wrapping [ErrTooLarge] (PLD).
// No function returns a NaN ε or δ with a nil error; should the arithmetic
// ever produce one, the error wraps [ErrNumerical] and names the events.
package accounting
