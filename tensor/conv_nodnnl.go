//go:build !cgo || noblas || nodnnl

package tensor

// ConvKernels names the convolution kernels compiled in: "im2col" (none:
// callers use im2col and GEMM) in this build.
const ConvKernels = "im2col"

// ConvPlan is a prepared convolution of one shape; this build has no
// convolution kernels and NewConvPlan always returns nil.
type ConvPlan struct{ s ConvShape }

type preparedWeights struct{}

// NewConvPlan returns nil: no convolution kernels in this build.
func NewConvPlan(s ConvShape) (*ConvPlan, error) { return nil, nil }

func (p *ConvPlan) Shape() ConvShape                       { return p.s }
func (p *ConvPlan) Impl() string                           { return "" }
func (p *ConvPlan) Forward(y, x []float32, w *ConvWeights) { panic("tensor: no convolution kernels") }
func (p *ConvPlan) BackwardData(dx, dy []float32, w *ConvWeights) {
	panic("tensor: no convolution kernels")
}
func (p *ConvPlan) BackwardWeights(dw, x, dy []float32) { panic("tensor: no convolution kernels") }

func (p *ConvPlan) WeightGradLayout() (BlockedLayout, bool) { return BlockedLayout{}, false }
func (p *ConvPlan) BackwardWeightsBlocked(dw, x, dy []float32) {
	panic("tensor: no convolution kernels")
}
func (p *ConvPlan) BlockWeightGrad(dst, w []float32)     { panic("tensor: no convolution kernels") }
func (p *ConvPlan) UnblockWeightGrad(dst, src []float32) { panic("tensor: no convolution kernels") }
