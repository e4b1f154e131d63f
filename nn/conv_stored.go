package nn

import "dptrain/tensor"

// The stored rule's backward-weights kernels: what forms one example's
// ∇W_j from its k rows of x and dy, and the layout the kept array stays in.

// storedKernel forms a call's weight gradient in its own layout and
// converts weights from and to plain OIHW (exact copies): a
// *tensor.ConvPlan with a row-blocked weight-gradient layout, or the
// F(2×2, 3×3) kernel (*tensor.WinogradWeightGrad).
type storedKernel interface {
	BackwardWeightsBlocked(dw, x, dy []float32)
	BlockWeightGrad(dst, w []float32)
	UnblockWeightGrad(dst, src []float32)
}

// wino2MaxCols is the most output positions per call (k·H·W, stride 1) at
// which the stored rule takes the F(2×2, 3×3) kernel: at 16² and below it
// beat oneDNN's direct and Winograd backward-weights for one example on
// every channel count measured (BENCHMARKS.md, "Per-example F(2×2, 3×3)
// weight gradients for the stored rule"); at 28² and 32² it tied or lost. A rule on the shape alone, so a run's
// bits do not depend on the machine's speed.
const wino2MaxCols = 400

// storedKernelFor returns the stored rule's kernel for one example's k rows
// of h×w inputs, and its layout: the F(2×2, 3×3) kernel where it applies
// (3×3, stride 1, one pixel of padding, channels in multiples of 16, an
// AVX-512 CPU) and k·h·w ≤ wino2MaxCols; else the plan of k rows when its
// weight-gradient layout is row-blocked; else nil (the plan's plain
// BackwardWeights or the patch GEMM form ∇W_j).
func (c *Conv2d) storedKernelFor(k, h, w int) (storedKernel, tensor.BlockedLayout) {
	if k*h*w <= wino2MaxCols {
		s := tensor.ConvShape{N: k, Cin: c.Cin, H: h, W: w, Cout: c.Cout, K: c.K, Stride: c.Stride, Pad: c.Pad}
		if c.wino2 == nil || c.wino2.Shape() != s {
			c.wino2 = tensor.NewWinogradWeightGrad(s)
		}
		if c.wino2 != nil {
			return c.wino2, c.wino2.Layout()
		}
	}
	if pl := c.planFor(k); pl != nil {
		if l, ok := pl.WeightGradLayout(); ok {
			return pl, l
		}
	}
	return nil, tensor.BlockedLayout{}
}
