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
//     that the layers that reported norms (BackwardContext.AddNorms) cover
//     exactly the trainable parameters.
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
// # Layer tree
//
// A model is a list of layers, some of which (Sequential, Residual) hold
// layers of their own: they implement Container. Walk is the one traversal
// of the tree, in forward order, the order of Model.Params; Validate and
// Model.GradLayers (so FreezeLayers) use it.
//
// # Implementing a layer
//
// A layer without parameters implements Layer:
//
//   - Forward(x, train) returns the output in a tensor the layer owns (valid
//     until its next Forward) and never modifies x. It keeps what Backward
//     needs; x itself stays valid until the layer below runs Forward again.
//     (The package's own ReLU and Residual write over the output of the
//     layer before them when that layer's Backward does not read its
//     output: outputFree in sequential.go.)
//   - Backward(dy, ctx) returns ∂L/∂x when ctx.NeedDX, and nil otherwise, in
//     a buffer from ctx.Grad (during a Model's backward pass, lent by the
//     model's arena and released by the caller once read: the gradient
//     lives from the layer that writes it to the one that reads it); it
//     never modifies dy. A layer that reads dy after Backward returns (in
//     AccumulateClipped) calls ctx.Keep(dy).
//   - A layer whose output for one example depends on another example must
//     implement ExampleMixer, so that Validate rejects it.
//
// A layer with trainable parameters must also implement GradLayer, or
// Validate rejects the model (its gradient would escape clipping):
//
//   - In Accumulate mode, Backward adds the batch gradient to Param.Grad of
//     every parameter that is not frozen (adds: never overwrites).
//   - In PerExample mode, Backward touches no Param.Grad. It keeps what
//     AccumulateClipped needs and calls ctx.AddNorms(l, sq) exactly once,
//     with one squared norm per example (ctx.GroupSize() consecutive
//     rows form one example; their gradients add up). sq[j] must be an upper
//     bound of the squared norm of what AccumulateClipped will add for
//     example j per unit of coefficient, over all the layer's trainable
//     parameters: never a rounded-down value. For gradients kept in float32
//     and added as kept, SumSquaresBound of their float64 sum of squares is
//     such a bound; for gradients recomputed later, the bound must cover the
//     rounding of both computations (normbound.go derives the ones of this
//     package).
//   - AccumulateClipped(coef) adds Σ_j coef[j]·g_j to Param.Grad. An example
//     with coef[j] = 0 must contribute exactly nothing, even when its input
//     or gradient is NaN or infinite: it is skipped, never multiplied by 0.
//   - NormMethod reports the rule used (RuleDirect for kept gradients);
//     Trainable reports whether any parameter is not frozen.
//   - Parameters are plain *Param values (Name unique within the model,
//     Shape, Value and Grad of the same length).
//
// A layer that forgets AddNorms, or reports for parameters it does not own,
// makes BackwardPerExample panic with a *CoverageError instead of releasing
// an unclipped gradient. Package nntest checks a new layer as this
// package's own are checked: CheckLayer compares its forward pass with a
// float64 reference and its gradients with finite differences and checks
// the ownership rules above; CheckPerExample compares its per-example
// norms and clipped sums with a naive loop over examples and checks the
// coefficient-0 contract; Coverage runs the coverage check. Its package
// example defines a layer outside this package (Scale) and runs it
// through all three.
package nn
