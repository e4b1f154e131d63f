// Package dpsgd holds the private step of DP-SGD (DESIGN §2, steps 4–8):
// per-example clipping, Gaussian noise on the clipped sum, normalisation by
// the expected batch size, the optimizer update and the moving average of
// the weights.
//
// The data-independent half lives in these files:
//
//   - noise.go, secure.go, noise64.go: NoiseSource, with a reproducible
//     SeededNoise (counter-based streams: deterministic whatever the thread
//     count, checkpointable as (seed, calls)) and a SecureNoise for releases
//     (crypto/rand-keyed ChaCha8, outputs snapped to a power-of-two grid
//     against floating-point attacks), for float32 vectors (AddGaussian:
//     the clipped sums) and float64 ones (AddGaussian64: releases computed
//     in float64, such as the data-normalisation sums, snapped before any
//     rounding). The mode ("seeded" / "secure") is recorded with the run.
//   - optim.go: SGD, heavy-ball momentum, Nesterov and Adam on parameter
//     groups given as [][]float32 (one slice per tensor), with decoupled
//     weight decay (p ← p − η·λ·p, λ multiplied by the learning rate as in
//     PyTorch's AdamW) and a per-tensor decay mask; state exported as named
//     float32 tensors and scalars for checkpoints.
//   - schedule.go: learning-rate schedules (constant, linear warm-up,
//     cosine, step) built from a ScheduleConfig.
//   - ema.go: exponential moving average of the weights with a warm-up of
//     the decay.
//
// Parameters are plain [][]float32 so that the package does not depend on
// the layer code. Elementwise loops run on a small package-level goroutine
// pool (see SetThreads); results never depend on the number of goroutines.
// Hot paths allocate nothing after their first call.
//
// Misuse of the API (mismatched lengths, negative std) panics with a
// *UsageError; bad configuration and bad checkpoint state are returned as
// errors naming the field.
package dpsgd
