// Package nntest is the conformance suite for layers, usable by a layer
// written in any package (as gonum's testblas is for BLAS
// implementations). Every layer of package nn passes it, and a new
// nn.GradLayer passes it before it is trusted with private training:
//
//   - CheckLayer checks one layer in Accumulate mode: Forward against a
//     float64 reference written from the layer's definition (sharing no
//     code with it), Backward's input and parameter gradients against
//     central finite differences of that reference (or, without one, of
//     the layer's own forward pass), and the ownership rules: Forward and
//     Backward leave their arguments alone, Backward adds to Param.Grad,
//     returns nil without NeedDX and leaves frozen parameters alone.
//   - CheckPerExample checks a model in PerExample mode against the naive
//     loop over examples (each run alone through the Accumulate-mode
//     backward pass that CheckLayer checks): the per-example squared norms
//     (total and per layer), the clipped sum AccumulateClipped adds, the
//     coverage of the trainable parameters, and that an example with a NaN
//     or infinite input and a coefficient of 0 contributes nothing.
//   - Coverage reports whether every trainable parameter is owned by a
//     layer that reported its norms (nn.Model.CheckCoverage): a layer that
//     forgets to call BackwardContext.AddNorms is caught here, and
//     BackwardPerExample refuses the model in training.
//
// LayerModel wraps one layer into a model for CheckPerExample and
// Coverage. The package example defines a layer outside nn (Scale) and
// runs it through all three; the package's tests show each check failing
// on a layer broken in the way it is meant to catch.
//
// Tolerances are those of float32 arithmetic (1e-4 relative for forward
// passes, norms and sums; 2e-3 for finite differences of a float64
// reference, 1e-2 for those of the layer itself), so the checks catch
// wrong formulas, missing terms, forgotten rows and broken contracts, not
// rounding. Whether a reported norm bounds the exact one to the last bit
// is a separate question, which the zero-tolerance tests of package nn
// answer for its own rules (normbound_exact_test.go).
package nntest
