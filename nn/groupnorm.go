package nn

import (
	"fmt"
	"math"

	"dptrain/tensor"
)

// GroupNorm normalises each example's channels in Groups groups over
// (C/Groups)·H·W values, then applies a per-channel affine γ·x̂ + β (Wu & He
// 2018). It never mixes examples, unlike BatchNorm.
//
// Per-example gradients of γ and β are B×C numbers, so they are always
// materialised ("direct"): ∇γ_i[c] = Σ_hw dy·x̂, ∇β_i[c] = Σ_hw dy.
type GroupNorm struct {
	Groups, C   int
	Eps         float32
	Gamma, Beta *Param // nil without affine

	xhat, y, dx *tensor.Tensor
	rstd        []float32 // B×Groups
	gg, gb      []float32 // per-example ∇γ, ∇β (B×C)
	m           int
	sq          []float64
}

// NewGroupNorm returns GroupNorm(groups, c) with γ = 1, β = 0, ε = 1e-5.
func NewGroupNorm(name string, groups, c int, affine bool) *GroupNorm {
	if groups < 1 || c%groups != 0 {
		shapePanic("NewGroupNorm", "%d channels not divisible into %d groups", c, groups)
	}
	g := &GroupNorm{Groups: groups, C: c, Eps: 1e-5}
	if affine {
		g.Gamma = newParam(name+".weight", true, c)
		g.Beta = newParam(name+".bias", true, c)
		for i := range g.Gamma.Value {
			g.Gamma.Value[i] = 1
		}
	}
	return g
}

func (g *GroupNorm) Describe() string { return fmt.Sprintf("groupnorm %d/%d", g.Groups, g.C) }

func (g *GroupNorm) Params() []*Param {
	if g.Gamma == nil {
		return nil
	}
	return []*Param{g.Gamma, g.Beta}
}

func (g *GroupNorm) Trainable() bool    { return g.Gamma != nil && anyTrainable(g.Gamma, g.Beta) }
func (g *GroupNorm) NormMethod() string { return "direct" }

func (g *GroupNorm) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	if len(x.Shape) != 4 || x.Shape[1] != g.C {
		shapePanic("GroupNorm.Forward", "input %v, want [B, %d, H, W]", x.Shape, g.C)
	}
	b, hw := x.Shape[0], x.Shape[2]*x.Shape[3]
	g.xhat = tensor.Ensure(g.xhat, x.Shape...)
	g.y = tensor.Ensure(g.y, x.Shape...)
	if cap(g.rstd) < b*g.Groups {
		g.rstd = make([]float32, b*g.Groups)
	}
	g.rstd = g.rstd[:b*g.Groups]
	cg := g.C / g.Groups
	n := cg * hw
	tensor.ParallelFor(b*g.Groups, 1, func(lo, hi int) {
		for q := lo; q < hi; q++ {
			i, gr := q/g.Groups, q%g.Groups
			off := (i*g.C + gr*cg) * hw
			xs := x.Data[off : off+n]
			var mu, v float64
			for _, e := range xs {
				mu += float64(e)
			}
			mu /= float64(n)
			for _, e := range xs {
				v += (float64(e) - mu) * (float64(e) - mu)
			}
			v /= float64(n)
			rs := 1 / math.Sqrt(v+float64(g.Eps))
			g.rstd[q] = float32(rs)
			xh := g.xhat.Data[off : off+n]
			ys := g.y.Data[off : off+n]
			for j, e := range xs {
				xh[j] = float32((float64(e) - mu) * rs)
			}
			for cc := 0; cc < cg; cc++ {
				ch := gr*cg + cc
				ga, be := float32(1), float32(0)
				if g.Gamma != nil {
					ga, be = g.Gamma.Value[ch], g.Beta.Value[ch]
				}
				for j := cc * hw; j < (cc+1)*hw; j++ {
					ys[j] = ga*xh[j] + be
				}
			}
		}
	})
	return g.y
}

func (g *GroupNorm) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	b, hw := g.xhat.Shape[0], g.xhat.Shape[2]*g.xhat.Shape[3]
	if len(dy.Data) != len(g.xhat.Data) {
		shapePanic("GroupNorm.Backward", "dy %v, want %v", dy.Shape, g.xhat.Shape)
	}
	cg := g.C / g.Groups
	n := cg * hw
	train := g.Trainable()
	if train {
		g.gg = tensor.EnsureSlice(g.gg, b*g.C)
		g.gb = tensor.EnsureSlice(g.gb, b*g.C)
	}
	if ctx.NeedDX {
		g.dx = tensor.Ensure(g.dx, g.xhat.Shape...)
	}
	tensor.ParallelFor(b*g.Groups, 1, func(lo, hi int) {
		for q := lo; q < hi; q++ {
			i, gr := q/g.Groups, q%g.Groups
			off := (i*g.C + gr*cg) * hw
			dys := dy.Data[off : off+n]
			xh := g.xhat.Data[off : off+n]
			if train {
				for cc := 0; cc < cg; cc++ {
					var sg, sb float64
					for j := cc * hw; j < (cc+1)*hw; j++ {
						sg += float64(dys[j]) * float64(xh[j])
						sb += float64(dys[j])
					}
					ch := i*g.C + gr*cg + cc
					g.gg[ch], g.gb[ch] = float32(sg), float32(sb)
				}
			}
			if !ctx.NeedDX {
				continue
			}
			// dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = γ·dy.
			var m1, m2 float64
			for cc := 0; cc < cg; cc++ {
				ga := float32(1)
				if g.Gamma != nil {
					ga = g.Gamma.Value[gr*cg+cc]
				}
				for j := cc * hw; j < (cc+1)*hw; j++ {
					d := float64(ga * dys[j])
					m1 += d
					m2 += d * float64(xh[j])
				}
			}
			m1 /= float64(n)
			m2 /= float64(n)
			rs := float64(g.rstd[q])
			dx := g.dx.Data[off : off+n]
			for cc := 0; cc < cg; cc++ {
				ga := float32(1)
				if g.Gamma != nil {
					ga = g.Gamma.Value[gr*cg+cc]
				}
				for j := cc * hw; j < (cc+1)*hw; j++ {
					dx[j] = float32((float64(ga*dys[j]) - m1 - float64(xh[j])*m2) * rs)
				}
			}
		}
	})
	if train {
		if ctx.Mode == Accumulate {
			for i := 0; i < b; i++ {
				g.addScaled(i, 1, i)
			}
		} else {
			k := ctx.group()
			m := b / k
			g.m = m
			// fold the rows of each example group into row j.
			if k > 1 {
				for j := 0; j < m; j++ {
					for a := 1; a < k; a++ {
						r := j*k + a
						for ch := 0; ch < g.C; ch++ {
							g.gg[j*k*g.C+ch] += g.gg[r*g.C+ch]
							g.gb[j*k*g.C+ch] += g.gb[r*g.C+ch]
						}
					}
					if j > 0 {
						copy(g.gg[j*g.C:(j+1)*g.C], g.gg[j*k*g.C:j*k*g.C+g.C])
						copy(g.gb[j*g.C:(j+1)*g.C], g.gb[j*k*g.C:j*k*g.C+g.C])
					}
				}
			}
			g.sq = growF64(g.sq, m)
			for j := 0; j < m; j++ {
				var s float64
				for ch := 0; ch < g.C; ch++ {
					if !g.Gamma.Frozen {
						s += float64(g.gg[j*g.C+ch]) * float64(g.gg[j*g.C+ch])
					}
					if !g.Beta.Frozen {
						s += float64(g.gb[j*g.C+ch]) * float64(g.gb[j*g.C+ch])
					}
				}
				g.sq[j] = s
			}
			ctx.register(g, g.sq)
		}
	}
	if ctx.NeedDX {
		return g.dx
	}
	return nil
}

func (g *GroupNorm) addScaled(row int, c float32, _ int) {
	for ch := 0; ch < g.C; ch++ {
		if !g.Gamma.Frozen {
			g.Gamma.Grad[ch] += c * g.gg[row*g.C+ch]
		}
		if !g.Beta.Frozen {
			g.Beta.Grad[ch] += c * g.gb[row*g.C+ch]
		}
	}
}

// AccumulateClipped adds Σ_j coef[j]·∇θ ℓ_j to the gradients.
func (g *GroupNorm) AccumulateClipped(coef []float32) {
	for j, c := range coef {
		g.addScaled(j, c, j)
	}
}
