// Package nntest is the conformance suite for layers, usable by a layer
// written in any package (as gonum's testblas is for BLAS
// implementations). A new nn.GradLayer passes it before it is trusted with
// private training:
//
//   - CheckLayer: Forward against a float64 reference written from the
//     layer's definition (sharing no code with it), and Backward's input
//     and parameter gradients against central finite differences of that
//     reference; Backward does not modify dy.
//   - CheckPerExample: in a model, the per-example squared norms a
//     PerExample backward reports bound the exact ones (from a naive loop
//     that runs each example alone through the Accumulate backward, itself
//     checked by CheckLayer) from above, within a relative 1e-4; per-layer
//     norms add up to the total; AccumulateClipped(coef) equals Σ coef_i·g_i.
//   - Coverage: whether every trainable parameter is owned by a layer that
//     reported its norms (nn.Model.CheckCoverage): a layer that forgets to
//     call BackwardContext.AddNorms is caught here, and BackwardPerExample
//     refuses the model in training.
//
// See the package example for a layer defined outside nn.
package nntest
