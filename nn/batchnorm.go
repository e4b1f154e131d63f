package nn

import (
	"fmt"

	"dptrain/tensor"
)

// BatchNorm2d exists so that models imported with BatchNorm can be described
// and rejected (or used frozen). In training mode it normalises with batch
// statistics, which mixes examples; with UseRunningStats it is a fixed
// per-channel affine map (as after folding pretrained statistics), which is
// fine for DP-SGD.
type BatchNorm2d struct {
	C               int
	UseRunningStats bool
	Mean, Var       []float32
	Eps             float32
	name            string
	y, dx           *tensor.Tensor
}

func NewBatchNorm2d(name string, c int) *BatchNorm2d {
	b := &BatchNorm2d{C: c, Mean: make([]float32, c), Var: make([]float32, c), Eps: 1e-5, name: name}
	for i := range b.Var {
		b.Var[i] = 1
	}
	return b
}

func (b *BatchNorm2d) Describe() string    { return fmt.Sprintf("batchnorm %d", b.C) }
func (b *BatchNorm2d) Params() []*Param    { return nil }
func (b *BatchNorm2d) MixesExamples() bool { return !b.UseRunningStats }

// Forward applies the frozen statistics; a training-mode BatchNorm panics:
// Validate rejects such models before they run.
func (b *BatchNorm2d) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	if !b.UseRunningStats {
		shapePanic("BatchNorm2d.Forward", "%s: batch statistics mix examples; use GroupNorm (Validate rejects this model)", b.name)
	}
	b.y = tensor.Ensure(b.y, x.Shape...)
	hw := x.Shape[2] * x.Shape[3]
	for i := 0; i < x.Shape[0]*b.C; i++ {
		ch := i % b.C
		s := 1 / sqrt32(b.Var[ch]+b.Eps)
		for j := i * hw; j < (i+1)*hw; j++ {
			b.y.Data[j] = (x.Data[j] - b.Mean[ch]) * s
		}
	}
	return b.y
}

func (b *BatchNorm2d) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if !ctx.NeedDX {
		return nil
	}
	b.dx = tensor.Ensure(b.dx, dy.Shape...)
	hw := dy.Shape[2] * dy.Shape[3]
	for i := 0; i < dy.Shape[0]*b.C; i++ {
		s := 1 / sqrt32(b.Var[i%b.C]+b.Eps)
		for j := i * hw; j < (i+1)*hw; j++ {
			b.dx.Data[j] = dy.Data[j] * s
		}
	}
	return b.dx
}
