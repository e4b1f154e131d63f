package nn

import (
	"dptrain/scatter"
	"dptrain/tensor"
)

// Scattering is the scattering transform of package scatter (Oyallon &
// Mallat; the ScatterNet features of Tramèr & Boneh 2021) as a layer: a
// fixed, data-independent feature extractor with no parameters, meant as
// the first layer of a model. Its fields (J, L, C, H, W, CacheBytes) and
// OutShape, Describe and CacheStats are the transform's.
//
// The transform is not differentiated: below every trainable layer the
// backward pass never reaches it, and Backward panics if the gradient of
// its input is requested.
type Scattering struct {
	*scatter.Transform
}

// ScatteringChannels returns K = 1 + J·L + L²·J(J−1)/2, the number of maps
// per input channel.
func ScatteringChannels(j, l int) int { return scatter.Channels(j, l) }

// NewScattering returns the scattering layer for c×h×w inputs with J
// scales and L orientations (see scatter.New for the sizes allowed).
func NewScattering(c, h, w, j, l int) *Scattering {
	return &Scattering{scatter.New(c, h, w, j, l)}
}

// Forward computes the scattering maps of every example.
func (s *Scattering) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	return s.Apply(x)
}

// Params returns none: the transform is fixed.
func (*Scattering) Params() []*Param { return nil }

// Backward returns nil when the input gradient is not needed (the usual
// case: the transform has no parameters and sits below every trainable
// layer). The transform is not differentiated, so a request for ∂L/∂x
// panics.
func (s *Scattering) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if ctx.NeedDX {
		shapePanic("Scattering.Backward", "the scattering transform is not differentiated: it must be the first layer, below every trainable layer (no input gradient)")
	}
	return nil
}
