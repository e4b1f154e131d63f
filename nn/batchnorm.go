package nn

import (
	"fmt"
	"math"

	"dptrain/internal/par"
	"dptrain/tensor"
)

// BatchNorm2d is BatchNorm (Ioffe & Szegedy 2015) over NCHW inputs.
//
// In training mode (UseRunningStats false) it normalises with the batch's
// statistics, which mixes examples: per-example gradients are undefined, so
// Validate rejects such a model and Forward panics.
//
// With frozen statistics (UseRunningStats, as for pretrained weights) it is
// a fixed per-example affine map per channel,
//
//	y = γ_c·(x − μ_c)·r_c + β_c,   r_c = 1/√(σ²_c + ε),
//
// where μ and σ² are the running mean and variance: parameters marked
// Buffer, always frozen, carried by checkpoints (torchvision's
// running_mean and running_var, Keras's moving_mean and moving_variance),
// never trained and never noised. γ and β (nil without affine) may be
// trained: their per-example gradients ∇γ_i[c] = Σ_hw dy·(x−μ_c)·r_c and
// ∇β_i[c] = Σ_hw dy are B×C numbers, kept in float32 and clipped exactly as
// GroupNorm's (RuleDirect; the float64 sum of squares is scaled up by its
// rounding bound, never rounded down). The input gradient is
// dx = γ_c·r_c·dy. AccumulateClipped leaves out examples whose coefficient
// is 0 (their gradients may be non-finite).
type BatchNorm2d struct {
	C               int
	UseRunningStats bool
	Eps             float32
	Gamma, Beta     *Param // γ, β; nil without affine
	Mean, Var       *Param // running μ, σ²: buffers (always frozen)

	x, y, dx     *tensor.Tensor
	channelGrads // per-example ∇γ, ∇β
}

// NewBatchNorm2d returns a training-mode BatchNorm of c channels without
// affine parameters, μ = 0, σ² = 1, ε = 1e-5: what a model built for
// non-private training has. Validate rejects it until UseRunningStats is
// set.
func NewBatchNorm2d(name string, c int) *BatchNorm2d {
	if c < 1 {
		shapePanic("NewBatchNorm2d", "%d channels", c)
	}
	b := &BatchNorm2d{C: c, Eps: 1e-5, Mean: newBuffer(name+".running_mean", c), Var: newBuffer(name+".running_var", c)}
	for i := range b.Var.Value {
		b.Var.Value[i] = 1
	}
	return b
}

// NewFrozenBatchNorm2d returns a BatchNorm of c channels with frozen
// statistics (μ = 0, σ² = 1 until weights are loaded), affine γ = 1, β = 0
// (torchvision's names: name.weight, name.bias, name.running_mean,
// name.running_var) and the given ε (torchvision 1e-5, Keras 1e-3).
func NewFrozenBatchNorm2d(name string, c int, eps float32) *BatchNorm2d {
	b := NewBatchNorm2d(name, c)
	b.UseRunningStats, b.Eps = true, eps
	b.Gamma = newParam(name+".weight", true, c)
	b.Beta = newParam(name+".bias", true, c)
	for i := range b.Gamma.Value {
		b.Gamma.Value[i] = 1
	}
	return b
}

// newBuffer returns a parameter that holds a fixed statistic: Buffer and
// Frozen, exempt from weight decay.
func newBuffer(name string, shape ...int) *Param {
	p := newParam(name, true, shape...)
	p.Frozen, p.Buffer = true, true
	return p
}

func (b *BatchNorm2d) Describe() string {
	mode := "frozen statistics"
	if !b.UseRunningStats {
		mode = "batch statistics"
	}
	return fmt.Sprintf("batchnorm %d (%s)", b.C, mode)
}

func (b *BatchNorm2d) Params() []*Param {
	if b.Gamma == nil {
		return []*Param{b.Mean, b.Var}
	}
	return []*Param{b.Gamma, b.Beta, b.Mean, b.Var}
}

func (b *BatchNorm2d) MixesExamples() bool  { return !b.UseRunningStats }
func (b *BatchNorm2d) Trainable() bool      { return trainable(b) }
func (b *BatchNorm2d) NormMethod() NormRule { return RuleDirect }

// scale returns γ_c·r_c and the shift β_c of channel c (y = a·(x−μ_c) + β_c).
func (b *BatchNorm2d) scale(c int) (a, shift float32) {
	r := 1 / math.Sqrt(float64(b.Var.Value[c])+float64(b.Eps))
	if b.Gamma == nil {
		return float32(r), 0
	}
	return float32(float64(b.Gamma.Value[c]) * r), b.Beta.Value[c]
}

// Forward applies the frozen statistics; a training-mode BatchNorm panics:
// Validate rejects such models before they run.
func (b *BatchNorm2d) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	if !b.UseRunningStats {
		shapePanic("BatchNorm2d.Forward", "%s: batch statistics mix examples; use GroupNorm or frozen statistics (Validate rejects this model)", b.Mean.Name)
	}
	if len(x.Shape) != 4 || x.Shape[1] != b.C {
		shapePanic("BatchNorm2d.Forward", "input %v, want [B, %d, H, W]", x.Shape, b.C)
	}
	b.x = x
	b.y = tensor.Ensure(b.y, x.Shape...)
	hw := x.Shape[2] * x.Shape[3]
	par.For(x.Shape[0]*b.C, 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			c := i % b.C
			a, shift := b.scale(c)
			tensor.Affine(b.y.Data[i*hw:(i+1)*hw], x.Data[i*hw:(i+1)*hw], b.Mean.Value[c], a, shift)
		}
	})
	return b.y
}

func (b *BatchNorm2d) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if b.x == nil || len(dy.Data) != len(b.x.Data) {
		shapePanic("BatchNorm2d.Backward", "dy %v, want the shape of the last Forward's input", dy.Shape)
	}
	n, hw := b.x.Shape[0], b.x.Shape[2]*b.x.Shape[3]
	train := b.Trainable()
	if train {
		b.ensure(n, b.C)
	}
	var dx *tensor.Tensor
	if ctx.NeedDX {
		dx = ctx.Grad(&b.dx, dy.Shape...)
	}
	par.For(n*b.C, 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			c := i % b.C
			dys := dy.Data[i*hw : (i+1)*hw]
			a, _ := b.scale(c)
			if train {
				sb, sg := tensor.CenteredDots(dys, b.x.Data[i*hw:(i+1)*hw], b.Mean.Value[c])
				r := 1 / math.Sqrt(float64(b.Var.Value[c])+float64(b.Eps))
				b.gg[i], b.gb[i] = float32(sg*r), float32(sb)
			}
			if ctx.NeedDX {
				tensor.Affine(dx.Data[i*hw:(i+1)*hw], dys, 0, a, 0)
			}
		}
	})
	switch {
	case !train:
	case ctx.Mode == Accumulate:
		for i := 0; i < n; i++ {
			b.addScaled(b.Gamma, b.Beta, b.C, i, 1)
		}
	default:
		b.norms(b, b.Gamma, b.Beta, b.C, n, ctx)
	}
	if ctx.NeedDX {
		return dx
	}
	return nil
}

// AccumulateClipped adds Σ_j coef[j]·∇θ ℓ_j to the gradients of γ and β;
// examples with coef[j] = 0 are left out.
func (b *BatchNorm2d) AccumulateClipped(coef []float32) {
	b.accumulate(b.Gamma, b.Beta, b.C, coef)
}
