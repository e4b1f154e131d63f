// Package optim holds the non-private half of a training step: optimizers,
// learning-rate schedules and the moving average of the weights. Nothing
// here touches per-example data or changes what DP-SGD releases: it only
// post-processes the noisy, normalised gradient that package dpsgd leaves
// in the parameters' Grad (DESIGN §2, steps 9–10).
//
//   - optim.go: SGD, heavy-ball momentum, Nesterov and Adam (New, Config,
//     Kind) on parameter groups given as [][]float32 (one slice per
//     tensor), with decoupled weight decay (p ← p − η·λ·p, λ multiplied by
//     the learning rate as in PyTorch's AdamW) and a per-tensor decay mask;
//     state exported as named float32 tensors and scalars for checkpoints.
//   - schedule.go: learning-rate schedules (constant, linear warm-up,
//     cosine, step) built from a ScheduleConfig.
//   - ema.go: exponential moving average of the weights with a warm-up of
//     the decay.
//
// Parameters are plain [][]float32: the package depends on no layer code.
// Elementwise loops run on the process's parallel runtime; results never
// depend on the number of goroutines. Hot paths allocate nothing after
// their first call.
//
// Misuse of the API (mismatched lengths) panics with a *UsageError; bad
// configuration and bad checkpoint state are returned as errors naming the
// field.
package optim
