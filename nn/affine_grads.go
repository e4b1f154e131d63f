package nn

import "dptrain/tensor"

// channelGrads holds the per-example gradients of a per-channel affine
// pair (γ, β), as GroupNorm and BatchNorm compute them: B×C numbers each,
// always materialised (RuleDirect). The kept float32 values are exactly
// what is added to the gradients (times the clip factor), so the norm is
// that of the released gradient; its float64 sum of squares is scaled up
// by its rounding bound (γ⁶⁴_{2C}), never rounded down.
type channelGrads struct {
	gg, gb []float32 // ∇γ, ∇β per batch row (rows × C)
	sq     []float64
}

// ensure sizes the gradients for rows batch rows of c channels.
func (g *channelGrads) ensure(rows, c int) {
	g.gg = tensor.EnsureSlice(g.gg, rows*c)
	g.gb = tensor.EnsureSlice(g.gb, rows*c)
}

// norms folds each example's rows into row j (example j) and reports the
// examples' squared norms over the trainable γ and β of l to ctx.
func (g *channelGrads) norms(l GradLayer, gamma, beta *Param, c, rows int, ctx *BackwardContext) {
	k := ctx.GroupSize()
	m := rows / k
	if k > 1 {
		foldChannelRows(g.gg, c, k, m)
		foldChannelRows(g.gb, c, k, m)
	}
	g.sq = growF64(g.sq, m)
	for j := 0; j < m; j++ {
		var s float64
		for ch := 0; ch < c; ch++ {
			if !gamma.Frozen {
				s += float64(g.gg[j*c+ch]) * float64(g.gg[j*c+ch])
			}
			if !beta.Frozen {
				s += float64(g.gb[j*c+ch]) * float64(g.gb[j*c+ch])
			}
		}
		g.sq[j] = SumSquaresBound(s, 2*c)
	}
	ctx.AddNorms(l, g.sq)
}

// foldChannelRows adds the k rows (of c values) of each of the m examples
// of v into the example's first row, in row order, and moves that sum to
// row j.
func foldChannelRows(v []float32, c, k, m int) {
	for j := 0; j < m; j++ {
		first := v[j*k*c : j*k*c+c]
		for a := 1; a < k; a++ {
			r := j*k + a
			for ch, x := range v[r*c : r*c+c] {
				first[ch] += x
			}
		}
		if j > 0 {
			copy(v[j*c:(j+1)*c], first)
		}
	}
}

// addScaled adds w times row's ∇γ and ∇β to the trainable gradients; w = 0
// adds nothing at all (the example takes no part: its gradient may be
// non-finite, and 0·Inf = NaN).
func (g *channelGrads) addScaled(gamma, beta *Param, c, row int, w float32) {
	if w == 0 {
		return
	}
	for ch := 0; ch < c; ch++ {
		if !gamma.Frozen {
			gamma.Grad[ch] += w * g.gg[row*c+ch]
		}
		if !beta.Frozen {
			beta.Grad[ch] += w * g.gb[row*c+ch]
		}
	}
}

// accumulate adds Σ_j coef[j]·∇θ ℓ_j; examples with coef[j] = 0 are left
// out.
func (g *channelGrads) accumulate(gamma, beta *Param, c int, coef []float32) {
	for j, w := range coef {
		g.addScaled(gamma, beta, c, j, w)
	}
}
