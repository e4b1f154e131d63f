// Package nn holds dptrain's layers and models: forward and backward passes,
// and the per-example gradient rules that DP-SGD needs.
//
// A training step over one physical batch is
//
//	y := model.Forward(x, true)
//	loss.Forward(y, labels) ; dy := loss.Backward(weights)
//	model.Backward(dy, mode)
//
// With mode Accumulate (non-private training) every trainable layer adds its
// gradient to Param.Grad during the backward pass. With mode PerExample
// (DP-SGD) the backward pass only computes each layer's contribution to the
// per-example squared gradient norms ‖g_i‖² (ghost norms, or per-example
// gradients materialised where that is cheaper: mixed ghost clipping), and
// keeps what it needs; the caller then turns norms into clip factors c_i and
// calls AccumulateClipped(c), which adds Σ_i c_i g_i to Param.Grad with one
// weighted product per layer (book-keeping). Per-example gradients of the
// whole model never exist in memory.
//
// Examples may be grouped: with augmentation multiplicity K, rows
// j·K … j·K+K−1 of the batch are K augmentations of one example, and its
// gradient is the sum over the group (the loss weights carry the 1/K).
//
// Guarantees DP-SGD's privacy argument relies on:
//
//   - Norms are upper bounds. The squared norm every per-example rule
//     reports is never below the exact one (real arithmetic on the float32
//     inputs): it is the computed value plus a proven bound on its rounding
//     error (normbound.go), so a clip factor min(1, C/‖g‖) never lets an
//     example contribute more than C.
//   - Coverage. Validate rejects a model with a trainable parameter outside
//     every per-example rule, and BackwardPerExample checks (CheckCoverage)
//     that the layers it registered cover exactly the trainable parameters.
//   - Zero means nothing. AccumulateClipped leaves out examples whose
//     coefficient is 0 entirely (their rows enter no product), so an example
//     with a non-finite gradient, given c = 0 by the clipping, cannot turn
//     the sum into NaN.
//   - Determinism. Forward, Backward, the per-example norms and
//     AccumulateClipped give the same bits on every run and at every thread
//     count (internal/par.SetThreads): layers cut batches into chunks whose size
//     depends only on the problem size, and sum over chunks through fixed
//     reduction slots (see package tensor). A batch of another size may
//     round differently.
//
// Layout is NCHW. Layers own their output and input-gradient buffers and
// reuse them across steps; Backward never modifies its argument. Misuse of
// shapes panics with a *tensor.ShapeError.
//
// # Implementing a layer
//
// A layer may live in any package. One without parameters implements
// Layer. One with trainable parameters implements GradLayer, the
// per-example extension point, and must:
//
//   - in Accumulate mode, add the batch gradient to each non-frozen
//     Param.Grad, and return ∂L/∂x when ctx.NeedDX;
//   - in PerExample mode (ctx.Mode == PerExample), leave Param.Grad alone,
//     compute for each example (ctx.GroupSize() consecutive rows) the
//     squared norm of its gradient over all the layer's trainable
//     parameters together, as an upper bound of the exact value (round
//     up, or add a bound on the rounding error: a norm below the exact one
//     would let the example contribute more than C), report it once with
//     ctx.AddNorms, and keep what AccumulateClipped needs;
//   - in AccumulateClipped(coef), add Σ_i coef[i]·g_i, leaving out
//     entirely every example with coef[i] = 0 (even when its gradient is
//     NaN or infinite);
//   - in NormMethod, name the rule it used.
//
// A layer that forgets AddNorms is not clipped silently: BackwardPerExample
// panics with a *CoverageError naming the parameters no rule covered. Test
// a new layer with package nn/nntest (CheckLayer against a float64
// reference and finite differences, CheckPerExample against a naive
// per-example loop, Coverage), as nn's own layers are tested; its example
// defines a layer outside nn.
package nn
