package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"dptrain/tensor"
)

// Linear is y = x·Wᵀ + b for x of shape [B, In]; W is [Out, In] (PyTorch
// layout), b is [Out].
//
// Per-example norms use the ghost rule: for an example made of K rows
// (augmentation multiplicity), ‖∇W_j‖² = Σ_{k,l} (g_k·g_l)(a_k·a_l) with a the
// input rows and g the output-gradient rows of the group — O(K²(In+Out))
// instead of O(K·In·Out) — and ‖∇b_j‖² = ‖Σ_k g_k‖².
type Linear struct {
	In, Out int
	W, B    *Param // B may be nil

	x   *tensor.Tensor // input of the last Forward (not owned)
	dy  *tensor.Tensor // output gradient of the last PerExample Backward (not owned)
	y   *tensor.Tensor
	dx  *tensor.Tensor
	tmp []float32
	sq  []float64
}

// NewLinear returns a Linear layer with PyTorch's default initialisation
// (U(±1/√In) for W and b).
func NewLinear(name string, in, out int, bias bool, r *rand.Rand) *Linear {
	l := &Linear{In: in, Out: out, W: newParam(name+".weight", false, out, in)}
	bound := 1 / math.Sqrt(float64(in))
	uniformInit(r, l.W.Value, bound)
	if bias {
		l.B = newParam(name+".bias", true, out)
		uniformInit(r, l.B.Value, bound)
	}
	return l
}

func (l *Linear) Describe() string { return fmt.Sprintf("linear %d→%d", l.In, l.Out) }

func (l *Linear) Params() []*Param {
	if l.B == nil {
		return []*Param{l.W}
	}
	return []*Param{l.W, l.B}
}

func (l *Linear) Trainable() bool    { return anyTrainable(l.W, l.B) }
func (l *Linear) NormMethod() string { return "ghost" }

func (l *Linear) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	if len(x.Shape) != 2 || x.Shape[1] != l.In {
		shapePanic("Linear.Forward", "input %v, want [B, %d]", x.Shape, l.In)
	}
	n := x.Shape[0]
	l.x = x
	l.y = tensor.Ensure(l.y, n, l.Out)
	tensor.Sgemm(false, true, n, l.Out, l.In, 1, x.Data, l.In, l.W.Value, l.In, 0, l.y.Data, l.Out)
	if l.B != nil {
		for i := 0; i < n; i++ {
			row := l.y.Data[i*l.Out : (i+1)*l.Out]
			for j, b := range l.B.Value {
				row[j] += b
			}
		}
	}
	return l.y
}

func (l *Linear) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	n := l.x.Shape[0]
	if len(dy.Shape) != 2 || dy.Shape[0] != n || dy.Shape[1] != l.Out {
		shapePanic("Linear.Backward", "dy %v, want [%d, %d]", dy.Shape, n, l.Out)
	}
	var dx *tensor.Tensor
	if ctx.NeedDX {
		l.dx = tensor.Ensure(l.dx, n, l.In)
		tensor.Sgemm(false, false, n, l.In, l.Out, 1, dy.Data, l.Out, l.W.Value, l.In, 0, l.dx.Data, l.In)
		dx = l.dx
	}
	if !l.Trainable() {
		return dx
	}
	if ctx.Mode == Accumulate {
		l.accumulate(dy.Data, nil, 1)
		return dx
	}
	l.dy = dy
	k := ctx.group()
	if n%k != 0 {
		shapePanic("Linear.Backward", "batch %d not a multiple of group %d", n, k)
	}
	m := n / k
	l.sq = growF64(l.sq, m)
	for j := 0; j < m; j++ {
		var s float64
		for a := j * k; a < (j+1)*k; a++ {
			for b := j * k; b < (j+1)*k; b++ {
				ga, gb := dy.Data[a*l.Out:(a+1)*l.Out], dy.Data[b*l.Out:(b+1)*l.Out]
				gg := dot(ga, gb)
				if l.B != nil && !l.B.Frozen {
					s += gg
				}
				if !l.W.Frozen {
					s += gg * dot(l.x.Data[a*l.In:(a+1)*l.In], l.x.Data[b*l.In:(b+1)*l.In])
				}
			}
		}
		l.sq[j] = s
	}
	ctx.register(l, l.sq)
	return dx
}

// AccumulateClipped adds Σ_j coef[j]·∇θ ℓ_j to the gradients.
func (l *Linear) AccumulateClipped(coef []float32) {
	n := l.x.Shape[0]
	k := n / len(coef)
	l.accumulate(l.dy.Data, coef, k)
}

// accumulate adds (c⊙dy)ᵀ·x to ∇W and the column sums of c⊙dy to ∇b, with
// coef[i/k] weighting row i (nil: all ones).
func (l *Linear) accumulate(dy []float32, coef []float32, k int) {
	n := l.x.Shape[0]
	g := dy
	if coef != nil {
		l.tmp = tensor.EnsureSlice(l.tmp, n*l.Out)
		for i := 0; i < n; i++ {
			c := coef[i/k]
			src, dst := dy[i*l.Out:(i+1)*l.Out], l.tmp[i*l.Out:(i+1)*l.Out]
			for j, v := range src {
				dst[j] = c * v
			}
		}
		g = l.tmp
	}
	if !l.W.Frozen {
		tensor.Sgemm(true, false, l.Out, l.In, n, 1, g, l.Out, l.x.Data, l.In, 1, l.W.Grad, l.In)
	}
	if l.B != nil && !l.B.Frozen {
		for i := 0; i < n; i++ {
			for j, v := range g[i*l.Out : (i+1)*l.Out] {
				l.B.Grad[j] += v
			}
		}
	}
}

func dot(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}
