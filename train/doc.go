// Package train runs a training job end to end: it opens the data, builds
// the model, plans and makes the private releases, trains, evaluates and
// writes everything a run produces into one output folder (--out). It is
// the package behind `dptrain train`, `eval`, `bench` and `demo`.
//
// # Shape of a run
//
// Run(cfg, opt) validates cfg (every problem, naming its key), applies the
// defaults (defaults.go: withDefaults, the one place they live; each is
// documented on its Config field), and then:
//
//   - plan.go: makePlan derives q = B/N, δ, σ (given, or calibrated to
//     target_epsilon for the whole schedule, the data-normalisation release
//     included), the steps and the budget, the learning-rate schedule and
//     the mechanism's configuration. It is pure: no data, model or disk.
//   - build.go: the model (init, frozen layers), its trainable slices and
//     the optimizer, schedule and EMA (package optim).
//   - privacy.go: the privacy book, the run's one record of what it
//     released: the ledger (ε is computed from it) and the journal.
//   - loop.go: one loop over a stepper, which dpsgd.PrivateStep and the
//     public step both satisfy. A private step returns the accounting
//     event of exactly the release it made; the book records it, in the
//     ledger and the fsynced journal, before anything derived from the
//     step (weights, metrics, checkpoints) is written.
//   - checkpoint.go, weights.go: checkpoints, resume, initial weights.
//   - summary.go, report.go, guarantee.go, metrics.go, plot.go: outputs.
//
// The privacy-critical path reads data/sampler.go → dpsgd/clip.go →
// dpsgd/step.go → dpsgd/noise.go (secure.go) → train/privacy.go, with
// dpsgd/moments.go for the one release before training (private data
// normalisation), and package accounting for ε.
//
// # What a run writes
//
// In --out, which must be empty, a previous run of the same config, or
// hold only dptrain's own files:
//
//   - checkpoints/ckpt-NNNNNNNNNN/: weights, optimizer and EMA state, the
//     noise source's state, the ledger, the resolved config and state.json
//     (package checkpoint: atomic, checksummed); the newest few are kept
//     (keep_checkpoints). One is written at step 0, before any step.
//   - privacy-journal.log: one fsynced line per release, written before
//     anything derived from the release.
//   - metrics.jsonl: one line per step (loss, learning rate, clipping
//     statistics, ε of RDP every step, ε of the run's accountant at the log
//     cadence) and per evaluation (accuracy and ε).
//   - summary.json, report.md (the result and the guarantee in words, with
//     what it does and does not cover), loss.png, accuracy.png and
//     epsilon.png (the run's accountant, RDP alongside, the target ε).
//
// Covered by the (ε, δ) guarantee: the weights in every checkpoint (raw
// and averaged), the optimizer state, evaluations of the model, the ledger.
// Not covered, and to be kept private like the data: the per-step metric
// lines, the progress log and loss.png (training loss, realised batch
// sizes, clipping statistics), wall times, the journal (its digest
// identifies the training set), and the fact and step of an early stop.
// report.md lists these for each run (Guarantee).
//
// # Resume contract
//
// Re-running the same command with the same --out resumes from the newest
// checkpoint that passes its checksums and restores; one that does not is
// skipped with a warning and the next older one is tried. A run of
// another configuration (fingerprint of the settings that shape the
// trajectory), other data (content digest) or a ledger this configuration
// does not release is refused, never restarted: the privacy already spent
// would be lost. Steps taken after the newest checkpoint are in the
// journal: in secure mode they are counted as spent (the re-run draws
// fresh batches and noise); in seeded mode they are re-run and checked bit
// for bit against the journal. Privacy is never under-counted: a missing
// or truncated journal stops the resume.
//
// Misuse of the API is a programming error; everything a user can get
// wrong (config, data, files) is an error naming the key, file or flag.
package train
