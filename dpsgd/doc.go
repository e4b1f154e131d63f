// Package dpsgd is the private mechanism of DP-SGD (DESIGN §2, steps 4–8)
// and nothing else: per-example clipping, Gaussian noise on the clipped
// sum, normalisation by the expected batch size, and the event each
// release realises. Optimizers, schedules and the moving average of the
// weights only post-process its output; they live in package optim.
//
// The privacy-critical path reads in these files, in order (sampling is in
// data/sampler.go, the book of events in train/privacy.go):
//
//   - clip.go: ClipFactors (min(1, C/(‖g_i‖+ε)) rounded down in float32 so
//     that c·‖g‖ ≤ C still holds, 0 for a non-finite norm), per-layer clip
//     norms, and PrivacyConfig (C, σ, B, q, K), the part of the
//     configuration that changes what is released.
//   - step.go: PrivateStep, one logical step on an nn.Model: Accumulate
//     adds the clipped per-example gradients of each physical batch, Finish
//     adds 𝒩(0, σ²C²) once, divides by B = qN and returns the
//     accounting.Event of exactly that release (accounting.Step(q, σ)).
//   - noise.go, secure.go, noise64.go: NoiseSource, with a reproducible
//     SeededNoise (counter-based streams: deterministic whatever the thread
//     count, checkpointable as (seed, calls)) and a SecureNoise for releases
//     (crypto/rand-keyed ChaCha8, outputs snapped to a power-of-two grid
//     against floating-point attacks), for float32 vectors (AddGaussian:
//     the clipped sums) and float64 ones (AddGaussian64: releases computed
//     in float64, snapped before any rounding). The mode (seeded / secure)
//     is recorded with the run.
//   - moments.go: the one release before training, private data
//     normalisation (Tramèr & Boneh 2021): clipped per-example channel
//     moments, noised with the same NoiseSource, clipped with the same
//     ClipFactors, reporting DataNormEvent.
//
// Elementwise loops run on the process's parallel runtime; results never
// depend on the number of goroutines. Hot paths allocate nothing after
// their first call.
//
// Misuse of the API (mismatched lengths, negative std) panics with a
// *UsageError; bad configuration and bad checkpoint state are returned as
// errors naming the field.
package dpsgd
