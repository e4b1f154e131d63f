package nn

import (
	"fmt"
	"math"

	"dptrain/tensor"
)

// Standardize normalises each channel with fixed statistics of the training
// data, y = (x − μ_c)/√(v_c + ε), and outputs 0 for a channel whose
// variance v_c is 0 (Tramèr & Boneh 2021's "data normalisation" of
// ScatterNet features). It mixes no examples: μ and v are constants during
// training, set once before training by a (private) pass over the data
// (train's data_norm settings).
//
// μ and v are parameters that are always frozen, so that checkpoints carry
// them; they never get a gradient or noise. Until they are set the layer is
// the identity map (μ = 0, v = 1 − ε).
type Standardize struct {
	C     int
	Eps   float32
	Mean  *Param // μ_c, frozen
	Var   *Param // v_c, frozen
	scale []float32
	y, dx *tensor.Tensor
}

// NewStandardize returns the layer for c channels with μ = 0 and v = 1−ε
// (identity) and ε = 1e-5.
func NewStandardize(name string, c int) *Standardize {
	if c < 1 {
		shapePanic("NewStandardize", "%d channels", c)
	}
	s := &Standardize{C: c, Eps: 1e-5, Mean: newBuffer(name+".mean", c), Var: newBuffer(name+".var", c)}
	for i := range s.Var.Value {
		s.Var.Value[i] = 1 - s.Eps
	}
	return s
}

func (s *Standardize) Describe() string { return fmt.Sprintf("standardize %d (data statistics)", s.C) }

// Params returns μ and v (both frozen).
func (s *Standardize) Params() []*Param { return []*Param{s.Mean, s.Var} }

// SetStats sets μ and v (copied; negative or non-finite variances and
// non-finite means are errors).
func (s *Standardize) SetStats(mean, variance []float64) error {
	if len(mean) != s.C || len(variance) != s.C {
		shapePanic("Standardize.SetStats", "%d means and %d variances for %d channels", len(mean), len(variance), s.C)
	}
	for c := range mean {
		if math.IsNaN(mean[c]) || math.IsInf(mean[c], 0) || math.IsNaN(variance[c]) || math.IsInf(variance[c], 0) || variance[c] < 0 {
			return fmt.Errorf("data normalisation: channel %d: mean %g, variance %g (want finite, variance ≥ 0)", c, mean[c], variance[c])
		}
	}
	for c := range mean {
		s.Mean.Value[c] = float32(mean[c])
		s.Var.Value[c] = float32(variance[c])
	}
	return nil
}

// scales returns 1/√(v+ε) per channel, 0 where v = 0, recomputed on every
// Forward (C square roots) so that SetStats and checkpoint loads, which
// write Var directly, always take effect.
func (s *Standardize) scales() []float32 {
	if s.scale == nil {
		s.scale = make([]float32, s.C)
	}
	for c, v := range s.Var.Value {
		if v == 0 {
			s.scale[c] = 0
		} else {
			s.scale[c] = float32(1 / math.Sqrt(float64(v)+float64(s.Eps)))
		}
	}
	return s.scale
}

func (s *Standardize) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	if len(x.Shape) != 4 || x.Shape[1] != s.C {
		shapePanic("Standardize.Forward", "input %v, want [B %d H W]", x.Shape, s.C)
	}
	b, hw := x.Shape[0], x.Shape[2]*x.Shape[3]
	s.y = tensor.Ensure(s.y, x.Shape...)
	sc := s.scales()
	for i := 0; i < b; i++ {
		for c := 0; c < s.C; c++ {
			off := (i*s.C + c) * hw
			m, k := s.Mean.Value[c], sc[c]
			src, dst := x.Data[off:off+hw], s.y.Data[off:off+hw]
			for j, v := range src {
				dst[j] = (v - m) * k
			}
		}
	}
	return s.y
}

func (s *Standardize) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if !ctx.NeedDX {
		return nil
	}
	b, hw := dy.Shape[0], dy.Shape[2]*dy.Shape[3]
	dx := ctx.Grad(&s.dx, dy.Shape...)
	sc := s.scale
	for i := 0; i < b; i++ {
		for c := 0; c < s.C; c++ {
			off := (i*s.C + c) * hw
			k := sc[c]
			for j, v := range dy.Data[off : off+hw] {
				dx.Data[off+j] = v * k
			}
		}
	}
	return dx
}
