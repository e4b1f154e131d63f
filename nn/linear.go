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
//
// The dot products are float64 sums of exact products of float32 numbers,
// within γ⁶⁴_In·‖a_k‖‖a_l‖ and γ⁶⁴_Out·‖g_k‖‖g_l‖ of the exact ones. For
// K = 1 every term is non-negative and the computed norm is within 1e-12
// (relative) of the exact one for any layer below 10⁴ inputs; for K > 1 the
// cross terms can cancel, so the reported value is always the proven upper
// bound of gramInner (normbound.go): never a rounded-down norm.
//
// AccumulateClipped leaves out every example whose coefficient is 0: its
// rows of dy and of the input enter no product (0·Inf would be NaN), and the
// result is bit for bit that of the batch without it (the same GEMM on the
// remaining rows).
type Linear struct {
	In, Out int
	W, B    *Param // B may be nil

	x   *tensor.Tensor // input of the last Forward (not owned)
	dy  *tensor.Tensor // output gradient of the last PerExample Backward (not owned)
	y   *tensor.Tensor
	dx  *tensor.Tensor
	tmp []float32
	xc  []float32 // input rows of the examples that take part
	sq  []float64
	gg  []float64 // K×K Grams of one example's rows (output gradients, inputs)
	xx  []float64
	vec []float64
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

func (l *Linear) Trainable() bool      { return trainable(l) }
func (l *Linear) NormMethod() NormRule { return RuleGhost }

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
		dx = ctx.Grad(&l.dx, n, l.In)
		tensor.Sgemm(false, false, n, l.In, l.Out, 1, dy.Data, l.Out, l.W.Value, l.In, 0, dx.Data, l.In)
	}
	if !l.Trainable() {
		return dx
	}
	if ctx.Mode == Accumulate {
		l.accumulate(dy.Data, nil, 1)
		return dx
	}
	l.dy = dy
	ctx.Keep(dy) // AccumulateClipped reads it
	k := ctx.GroupSize()
	if n%k != 0 {
		shapePanic("Linear.Backward", "batch %d not a multiple of group %d", n, k)
	}
	m := n / k
	l.sq = growF64(l.sq, m)
	l.gg, l.xx, l.vec = ensure64(l.gg, k*k), ensure64(l.xx, k*k), ensure64(l.vec, 2*k)
	wTrain, bTrain := !l.W.Frozen, l.B != nil && !l.B.Frozen
	eG, eX := gamma(l.Out+1, unit64), gamma(l.In+1, unit64)
	for j := 0; j < m; j++ {
		for a := 0; a < k; a++ {
			ra := j*k + a
			ga, xa := dy.Data[ra*l.Out:(ra+1)*l.Out], l.x.Data[ra*l.In:(ra+1)*l.In]
			for b := a; b < k; b++ {
				rb := j*k + b
				l.gg[a*k+b] = dot(ga, dy.Data[rb*l.Out:(rb+1)*l.Out])
				if wTrain {
					l.xx[a*k+b] = dot(xa, l.x.Data[rb*l.In:(rb+1)*l.In])
				}
			}
		}
		var s float64
		if bTrain {
			_, up := gramInner(nil, l.gg, k, 0, eG, l.vec)
			s += up
		}
		if wTrain {
			_, up := gramInner(l.xx, l.gg, k, eX, eG, l.vec)
			s += up
		}
		l.sq[j] = s
	}
	ctx.AddNorms(l, l.sq)
	return dx
}

// AccumulateClipped adds Σ_j coef[j]·∇θ ℓ_j to the gradients, leaving out
// the examples with coef[j] = 0 entirely.
func (l *Linear) AccumulateClipped(coef []float32) {
	n := l.x.Shape[0]
	k := n / len(coef)
	l.accumulate(l.dy.Data, coef, k)
}

// accumulate adds (c⊙dy)ᵀ·x to ∇W and the column sums of c⊙dy to ∇b, with
// coef[i/k] weighting row i (nil: all ones). Rows whose coefficient is 0
// are dropped from both operands (compacted), so they enter no product.
func (l *Linear) accumulate(dy []float32, coef []float32, k int) {
	n := l.x.Shape[0]
	g, x := dy, l.x.Data
	if coef != nil {
		l.tmp = tensor.EnsureSlice(l.tmp, n*l.Out)
		skip := false
		na := 0
		for i := 0; i < n; i++ {
			c := coef[i/k]
			if c == 0 {
				skip = true
				continue
			}
			src, dst := dy[i*l.Out:(i+1)*l.Out], l.tmp[na*l.Out:(na+1)*l.Out]
			for j, v := range src {
				dst[j] = c * v
			}
			na++
		}
		if skip {
			l.xc = tensor.EnsureSlice(l.xc, n*l.In)
			na = 0
			for i := 0; i < n; i++ {
				if coef[i/k] != 0 {
					copy(l.xc[na*l.In:(na+1)*l.In], x[i*l.In:(i+1)*l.In])
					na++
				}
			}
			x = l.xc[:na*l.In]
		}
		g, n = l.tmp[:na*l.Out], na
	}
	if n == 0 {
		return
	}
	if !l.W.Frozen {
		tensor.Sgemm(true, false, l.Out, l.In, n, 1, g, l.Out, x, l.In, 1, l.W.Grad, l.In)
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
