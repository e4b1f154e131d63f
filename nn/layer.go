package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"dptrain/tensor"
)

// Param is one parameter tensor of a layer.
type Param struct {
	Name  string // unique within the model, e.g. "layer1.0.conv1.weight"
	Shape []int
	Value []float32
	Grad  []float32 // accumulated gradient (non-private) or clipped sum (private)
	// Frozen parameters get no gradient and no per-example work.
	Frozen bool
	// NoDecay marks parameters (biases, normalisation affine) that weight
	// decay should skip.
	NoDecay bool
	// Buffer marks a fixed statistic (BatchNorm's running mean and
	// variance, Standardize's): always frozen, never trained or noised,
	// carried by checkpoints. Freezing and unfreezing leave it frozen.
	Buffer bool

	cover uint64 // Model.CheckCoverage's mark
}

func newParam(name string, noDecay bool, shape ...int) *Param {
	n := tensor.Numel(shape...)
	return &Param{Name: name, Shape: append([]int(nil), shape...), Value: make([]float32, n), Grad: make([]float32, n), NoDecay: noDecay}
}

// Mode selects what Backward does with parameter gradients.
type Mode int

const (
	// Accumulate adds the batch gradient to Param.Grad (non-private training).
	Accumulate Mode = iota
	// PerExample computes per-example squared norms and defers the gradient
	// to AccumulateClipped.
	PerExample
)

// Layer is one forward/backward pair. Forward returns a tensor owned by the
// layer (valid until its next Forward); Backward returns ∂L/∂x in a buffer
// from ctx.Grad (the caller's to release with ctx.Done once read), or nil
// when ctx.NeedDX is false.
type Layer interface {
	Forward(x *tensor.Tensor, train bool) *tensor.Tensor
	Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor
	// Params lists the layer's parameters (of sublayers too).
	Params() []*Param
	// Describe returns a one-line description ("conv 3→64 k3 s1 p1").
	Describe() string
}

// BackwardContext carries what a backward pass needs besides dy.
type BackwardContext struct {
	Mode Mode
	// Group is the number of consecutive batch rows forming one example
	// (augmentation multiplicity K); 0 or 1 means one row per example.
	Group int
	// NeedDX is false for the lowest layer that must be differentiated: its
	// input gradient is not computed.
	NeedDX bool
	// SqNorms[i] accumulates ‖g_i‖² over layers in PerExample mode; length
	// batch/Group.
	SqNorms []float64
	// Layers, when non-nil, receives each trainable leaf that took part in
	// this backward pass, in backward order (used by AccumulateClipped).
	Layers []GradLayer
	// LayerNorms, when non-nil, receives per layer the per-example squared
	// norms of that layer alone (for per-layer clipping); indexed like Layers.
	LayerNorms [][]float64
	// MaterializeBudget caps the floats a layer may use to store per-example
	// gradients (B·|θ_layer|); ≤0 means the default.
	MaterializeBudget int

	arena *gradArena // the Model's, during its backward passes (arena.go)
}

// GroupSize returns the number of consecutive batch rows that form one
// example (K ≥ 1: Group, or 1 when Group is 0 or 1): a GradLayer's
// per-example norms and clip factors have one entry per group of
// GroupSize rows.
func (c *BackwardContext) GroupSize() int {
	if c.Group < 1 {
		return 1
	}
	return c.Group
}

// AddNorms records the per-example squared gradient norms of one GradLayer
// in a PerExample backward pass: sq[j] (one entry per example, len(SqNorms)
// of them) bounds from above the exact ‖∇θ ℓ_j‖² over all of l's
// parameters that are not frozen. It adds sq to SqNorms and, when the
// caller asked for them, appends l to Layers and a copy of sq to
// LayerNorms. A trainable GradLayer calls it exactly once per PerExample
// Backward; Model.CheckCoverage checks that the layers that called it own
// the model's trainable parameters, each once. sq is not retained.
func (c *BackwardContext) AddNorms(l GradLayer, sq []float64) {
	if len(sq) != len(c.SqNorms) {
		shapePanic("BackwardContext.AddNorms", "%s: %d norms for %d examples", l.Describe(), len(sq), len(c.SqNorms))
	}
	for i, v := range sq {
		c.SqNorms[i] += v
	}
	if c.Layers != nil || c.LayerNorms != nil {
		c.Layers = append(c.Layers, l)
		if c.LayerNorms != nil {
			c.LayerNorms = append(c.LayerNorms, append([]float64(nil), sq...))
		}
	}
}

// GradLayer is a leaf layer with trainable parameters, which DP-SGD can
// clip per example. In PerExample mode its Backward reports one squared
// norm per example for all its trainable parameters together, an upper
// bound of the exact one (normbound.go), through BackwardContext.AddNorms;
// Model.CheckCoverage verifies that the reporting layers own every
// trainable parameter. The package comment ("Implementing a layer") states
// the whole contract.
type GradLayer interface {
	Layer
	// Trainable reports whether any parameter is not frozen.
	Trainable() bool
	// AccumulateClipped adds Σ_i coef[i]·g_i to Param.Grad, using what the
	// last PerExample backward kept. coef has one entry per example (group).
	// An example with coef[i] = 0 must contribute exactly nothing, even when
	// its gradient (or its input) is NaN or infinite: it is left out of
	// every product, never multiplied by 0.
	AccumulateClipped(coef []float32)
	// NormMethod tells how the last PerExample backward computed norms.
	NormMethod() NormRule
}

// ShapeError is the panic value for layer misuse.
type ShapeError = tensor.ShapeError

func shapePanic(op, format string, args ...any) {
	panic(&tensor.ShapeError{Op: op, Msg: fmt.Sprintf(format, args...)})
}

// kaimingNormal fills w with 𝒩(0, 2/fan) (He et al. 2015), the torchvision
// initialisation of ResNet convolutions (fan = fan_out).
func kaimingNormal(r *rand.Rand, w []float32, fan int) {
	std := math.Sqrt(2 / float64(fan))
	for i := range w {
		w[i] = float32(r.NormFloat64() * std)
	}
}

// uniformInit fills w with U(−b, b).
func uniformInit(r *rand.Rand, w []float32, b float64) {
	for i := range w {
		w[i] = float32((2*r.Float64() - 1) * b)
	}
}

func growF64(buf []float64, n int) []float64 {
	if cap(buf) >= n {
		buf = buf[:n]
		clear(buf)
		return buf
	}
	return make([]float64, n)
}

const defaultMaterializeBudget = 32 << 20 // floats (128 MiB) of stored per-example gradients per layer

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
