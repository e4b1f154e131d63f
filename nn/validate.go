package nn

import (
	"errors"
	"fmt"

	"dptrain/tensor"
)

// ExampleMixer is implemented by layers whose output for one example depends
// on other examples of the batch (BatchNorm in training mode). DP-SGD's
// per-example gradients are undefined for them.
type ExampleMixer interface {
	MixesExamples() bool
}

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

// Validate checks that a model is fit for DP-SGD:
//
//   - no layer mixes examples within a batch;
//   - no trainable parameter escapes clipping: every leaf layer (below
//     Sequential and Residual containers) that owns a parameter that is not
//     frozen must be a GradLayer, whose per-example rule covers its
//     parameters. Any other layer type with trainable parameters (a custom
//     layer, or a container Validate cannot see into) is rejected: its
//     gradient would be released without being clipped.
//
// The error names each offending layer (by path and description), its
// parameter, and what to do.
func Validate(m *Model) error {
	var errs []error
	var walk func(path string, ls []Layer)
	walk = func(path string, ls []Layer) {
		for i, l := range ls {
			p := fmt.Sprintf("%s%d", path, i)
			if mx, ok := l.(ExampleMixer); ok && mx.MixesExamples() {
				errs = append(errs, fmt.Errorf("model %s: layer %s (%s) mixes examples within a batch, so per-example gradients and their clipping are undefined; use GroupNorm (e.g. GroupNorm(min(32, C), C)) instead, or freeze it with fixed running statistics", m.Name, p, l.Describe()))
			}
			switch v := l.(type) {
			case *Sequential:
				walk(p+".", v.Layers)
			case *Residual:
				walk(p+".pre.", v.Pre)
				walk(p+".main.", v.Main)
				walk(p+".shortcut.", v.Shortcut)
			case GradLayer:
			default:
				for _, prm := range l.Params() {
					if !prm.Frozen {
						errs = append(errs, fmt.Errorf("model %s: layer %s (%s, %T) has trainable parameter %q but no per-example gradient rule (it is not a GradLayer), so its gradient would escape clipping; freeze it or implement GradLayer", m.Name, p, l.Describe(), l, prm.Name))
					}
				}
			}
		}
	}
	walk("", m.Layers)
	return errors.Join(errs...)
}
