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
// An event describes its mechanism completely: it is all an accountant
// needs, and all a [Ledger] stores. Ledgers are written into checkpoints as
// JSON (each event a tagged object, {"type":"gaussian",
// "noise_multiplier":…}), so the events obey dp_accounting's evolution
// rules, which make an old checkpoint mean the same thing to every later
// version:
//
//   - An event type, and a parameter of one, is never removed or renamed,
//     and its JSON tag ("gaussian", "poisson_sampled", "self_composed",
//     "composed") and field names never change.
//   - The meaning of an existing event or parameter never changes (σ stays
//     the noise standard deviation over an L2 sensitivity of 1, q the
//     Poisson inclusion probability, adjacency add-or-remove-one). A
//     different mechanism, or a different meaning, is a new event type with
//     a new tag.
//   - A new parameter of an existing event must have a default that gives
//     the old meaning when absent. The decoder rejects unknown types and
//     fields, so an older version refuses a newer ledger rather than
//     misreading it; the ledger's "version" changes only if the encoding
//     itself does.
//   - An accountant that cannot handle an event says so ([ErrUnsupported],
//     naming the sub-event); it never approximates it silently.
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
// The questions users ask take named values, never a row of positional
// floats (δ, q and ε are all small positive numbers, and a swapped
// argument would compile): a [Kind] ([KindRDP], [KindPLD]; [ParseKind]
// reads one from a config or flag), a [Budget] {ε, δ}, and a [Schedule]
// {q, σ, T, Prior}, the DP-SGD run of Abadi et al. 2016 after an optional
// prior release (such as private data-normalisation statistics):
//
//	Epsilon(kind, delta, s)      // ε(δ) of s.Event(): Prior, then T steps
//	CalibrateNoise(kind, b, s)   // the smallest σ with ε ≤ b.Epsilon (s.NoiseMultiplier ignored)
//	MaxSteps(kind, b, s)         // the largest T with ε ≤ b.Epsilon (s.Steps ignored)
//	MaxEpochs(kind, b, N, B, σ)  // the same, in whole epochs of B out of N
//
// They are wrappers of one generic pair, dp_accounting's
// calibrate_dp_mechanism in Go, which calibrates anything that maps to an
// event:
//
//	Calibrate(kind, b, func(x float64) Event, Param)  // smallest x (ε non-increasing in x)
//	CalibrateCount(kind, b, func(n int) Event, guess) // largest n (ε non-decreasing in n)
//
// Calibration never returns a value whose ε exceeds the target: the ε it
// returns was computed for the value it returns. A target that the end of
// the search range cannot meet is an *[UnreachableError] (wrapping
// [ErrUnreachable]).
//
// Calibrate searches x in [Param.Lo, Param.Hi] (for σ: [MinNoiseMultiplier,
// MaxNoiseMultiplier]) by bracketing (doubling from 1, or steps of 1.25
// from a guess) and an Illinois (regula falsi) refinement on (log x,
// log ε), to a relative tolerance of 1e-4 (RDP) or 1e-3 (PLD). PLD
// calibration starts from the RDP answer; with a prior, from the answer
// without it. Typical costs on a shared 2-core VM: RDP ε of any number of
// steps ≈ 1 ms, RDP calibration ≈ 12 ms, PLD ε of 10⁴ steps ≈ 0.2 s, PLD
// calibration ≈ 1–3 s (see bench_test.go).
//
// # Ledger
//
// A [Ledger] records the events of a run (consecutive identical steps are
// merged into one entry, so recording is O(1)), serialises to JSON for
// checkpoints, and recomputes ε from scratch on demand.
//
// Invalid inputs (q ∉ (0, 1], σ ≤ 0, δ ∉ (0, 1), negative counts, unsupported
// events, unreachable targets) are errors that name the quantity (and, in
// a composition, the sub-event), never panics; they wrap the sentinels of
// errors.go, whose messages begin "accounting: "; misuse of the Go API itself (e.g. RDP orders ≤ 1) panics with a
// typed value. Every finite σ > 0 is accepted: σ² is never formed (it
// overflows beyond 1.3e154), so a huge σ gives ε = 0 or a tiny ε, and a tiny
// σ a huge or infinite ε (RDP) or an error wrapping [ErrTooLarge] (PLD).
// No function returns a NaN ε or δ with a nil error; should the arithmetic
// ever produce one, the error wraps [ErrNumerical] and names the events.
package accounting
