package nn

import (
	"fmt"
	"math"

	"dptrain/internal/par"
	"dptrain/tensor"
)

// GroupNorm normalises each example's channels in Groups groups over
// (C/Groups)·H·W values, then applies a per-channel affine γ·x̂ + β (Wu & He
// 2018). It never mixes examples, unlike BatchNorm.
//
// Per-example gradients of γ and β are B×C numbers, so they are always
// materialised (RuleDirect): ∇γ_i[c] = Σ_hw dy·x̂, ∇β_i[c] = Σ_hw dy. The kept
// float32 values are exactly what AccumulateClipped adds (times c_i), so the
// norm is exact for what is released; its float64 sum of squares is scaled
// up by its rounding bound γ⁶⁴_{2C}, never rounded down. AccumulateClipped
// skips examples whose coefficient is 0 (their gradients may be NaN or Inf,
// and 0·Inf = NaN).
//
// Forward keeps its input x (valid until the layer below runs Forward again,
// as every layer's output is) and the per-group mean and 1/σ, not x̂:
// Backward recomputes x̂ = (x−μ)/σ on the fly. Statistics are summed in
// float32 blocks added in float64 (tensor.Sum, tensor.CenteredMoments), μ
// is kept in float64, and the backward pass takes the per-channel Σdy and
// Σdy·x̂ once for both the parameter gradients and dx.
type GroupNorm struct {
	Groups, C   int
	Eps         float32
	Gamma, Beta *Param // nil without affine

	x, y, dx     *tensor.Tensor
	mean         []float64 // B×Groups
	rstd         []float32 // B×Groups
	channelGrads           // per-example ∇γ, ∇β
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

func (g *GroupNorm) Trainable() bool      { return trainable(g) }
func (g *GroupNorm) NormMethod() NormRule { return RuleDirect }

// splitMean returns μ as a float32 and the float32 remainder μ − float32(μ):
// kernels subtract the float32 mean from each element (exactly, by Sterbenz,
// when the element is within a factor 2 of it) and fold the remainder into
// a per-channel constant, so results do not suffer from rounding μ to
// float32 when the mean is large against the spread.
func splitMean(mu float64) (hi, lo float32) {
	hi = float32(mu)
	return hi, float32(mu - float64(hi))
}

func (g *GroupNorm) gamma(ch int) (ga, be float32) {
	if g.Gamma == nil {
		return 1, 0
	}
	return g.Gamma.Value[ch], g.Beta.Value[ch]
}

func (g *GroupNorm) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	if len(x.Shape) != 4 || x.Shape[1] != g.C {
		shapePanic("GroupNorm.Forward", "input %v, want [B, %d, H, W]", x.Shape, g.C)
	}
	b, hw := x.Shape[0], x.Shape[2]*x.Shape[3]
	g.x = x
	g.y = tensor.Ensure(g.y, x.Shape...)
	if cap(g.mean) < b*g.Groups {
		g.mean = make([]float64, b*g.Groups)
	}
	g.mean = g.mean[:b*g.Groups]
	g.rstd = tensor.EnsureSlice(g.rstd, b*g.Groups)
	cg := g.C / g.Groups
	n := cg * hw
	par.For(b*g.Groups, 1, func(lo, hi int) {
		for q := lo; q < hi; q++ {
			i, gr := q/g.Groups, q%g.Groups
			off := (i*g.C + gr*cg) * hw
			xs := x.Data[off : off+n]
			mu := float32(tensor.Sum(xs) / float64(n))
			// second pass around the float32 mean, corrected by the mean
			// of the deviations (what rounding μ to float32 left).
			s1, s2 := tensor.CenteredMoments(xs, mu)
			d := s1 / float64(n)
			v := max(s2/float64(n)-d*d, 0)
			mu64 := float64(mu) + d
			rs := float32(1 / math.Sqrt(v+float64(g.Eps)))
			g.mean[q], g.rstd[q] = mu64, rs
			mu, lo := splitMean(mu64)
			ys := g.y.Data[off : off+n]
			for cc := 0; cc < cg; cc++ {
				ga, be := g.gamma(gr*cg + cc)
				a := ga * rs
				tensor.Affine(ys[cc*hw:(cc+1)*hw], xs[cc*hw:(cc+1)*hw], mu, a, be-lo*a)
			}
		}
	})
	return g.y
}

func (g *GroupNorm) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if g.x == nil || len(dy.Data) != len(g.x.Data) {
		shapePanic("GroupNorm.Backward", "dy %v, want the shape of the last Forward's input", dy.Shape)
	}
	b := g.x.Shape[0]
	train := g.Trainable()
	if train {
		g.ensure(b, g.C)
	}
	var dx *tensor.Tensor
	if ctx.NeedDX {
		dx = ctx.Grad(&g.dx, g.x.Shape...)
	}
	g.backwardGroups(dx, dy, train)
	switch {
	case !train:
	case ctx.Mode == Accumulate:
		for i := 0; i < b; i++ {
			g.addScaled(g.Gamma, g.Beta, g.C, i, 1)
		}
	default:
		g.norms(g, g.Gamma, g.Beta, g.C, b, ctx)
	}
	if ctx.NeedDX {
		return dx
	}
	return nil
}

// backwardGroups runs the backward pass of every (example, group) in
// parallel: the per-row ∇γ and ∇β into gg and gb (when train) and, when dx
// is not nil, the input gradient into dx.
func (g *GroupNorm) backwardGroups(dx, dy *tensor.Tensor, train bool) {
	needDX := dx != nil
	x := g.x
	b, hw := x.Shape[0], x.Shape[2]*x.Shape[3]
	cg := g.C / g.Groups
	n := cg * hw
	par.For(b*g.Groups, 1, func(lo, hi int) {
		for q := lo; q < hi; q++ {
			i, gr := q/g.Groups, q%g.Groups
			off := (i*g.C + gr*cg) * hw
			dys := dy.Data[off : off+n]
			xs := x.Data[off : off+n]
			mu, lo := splitMean(g.mean[q])
			rs := g.rstd[q]
			// Per channel: Σdy and Σdy·x̂ = rs·Σdy·(x−μ). They are the
			// per-example ∇β and ∇γ, and (weighted by γ) the group sums
			// that dx needs: with dx̂ = γ·dy,
			// dx = rs·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)).
			var m1, m2 float64
			for cc := 0; cc < cg; cc++ {
				sb, sg := tensor.CenteredDots(dys[cc*hw:(cc+1)*hw], xs[cc*hw:(cc+1)*hw], mu)
				sg = (sg - float64(lo)*sb) * float64(rs)
				if train {
					ch := i*g.C + gr*cg + cc
					g.gg[ch], g.gb[ch] = float32(sg), float32(sb)
				}
				ga, _ := g.gamma(gr*cg + cc)
				m1 += float64(ga) * sb
				m2 += float64(ga) * sg
			}
			if !needDX {
				continue
			}
			m1 /= float64(n)
			m2 /= float64(n)
			dxs := dx.Data[off : off+n]
			// dx = (γ·rs)·dy − (rs²·m2)·(x−μ) − rs·m1, x−μ = (x−μ₃₂) − lo
			bx := -float32(float64(rs) * float64(rs) * m2)
			c := -float32(float64(rs)*m1) - bx*lo
			for cc := 0; cc < cg; cc++ {
				ga, _ := g.gamma(gr*cg + cc)
				j := cc * hw
				tensor.Combine(dxs[j:j+hw], dys[j:j+hw], xs[j:j+hw], mu, ga*rs, bx, c)
			}
		}
	})
}

// AccumulateClipped adds Σ_j coef[j]·∇θ ℓ_j to the gradients; examples with
// coef[j] = 0 are left out.
func (g *GroupNorm) AccumulateClipped(coef []float32) {
	g.accumulate(g.Gamma, g.Beta, g.C, coef)
}
