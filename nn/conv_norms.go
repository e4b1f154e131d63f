package nn

import (
	"math"

	"dptrain/internal/par"
	"dptrain/tensor"
)

// Per-example norm rules of Conv2d (the PerExample backward pass and
// AccumulateClipped). Each rule returns a proven upper bound of the exact
// squared norm of the example's weight gradient (normbound.go): the clip
// factor computed from it never lets an example contribute more than C.

// backwardPerExample runs the PerExample backward pass: input gradients, each
// example's bias gradient (kept for AccumulateClipped) and its squared
// gradient norm under the chosen rule. Chunks are independent (no sums
// across chunks), so their assignment to workers does not matter.
func (c *Conv2d) backwardPerExample(dy *tensor.Tensor, ctx *BackwardContext, k, t, nch int, chunk func(ch int) []int, h, w int, needDX bool) {
	b := c.x.Shape[0]
	p := c.Cout
	m := b / k
	c.dy, c.group = dy, k
	c.rule = c.chooseRule(m, k, t, ctx.MaterializeBudget)
	wTrain := !c.W.Frozen
	if wTrain && c.rule != RuleMaterializeStored {
		// AccumulateClipped forms Σ c_j ∇W_j from x and dy; the stored
		// rule adds the gradients it kept, and the bias adds bgrad.
		ctx.Keep(dy)
	}
	bTrain := c.B != nil && !c.B.Frozen
	c.sq = growF64(c.sq, m)
	c.bgrad = tensor.EnsureSlice(c.bgrad, m*p)
	pixel := wTrain && c.rule == RuleGhost && c.usePixelGram(h, w, k, t)
	if pixel {
		c.pix.build(c, h, w, k)
	}
	// The stored rule forms ∇W_j with a backward-weights kernel on the
	// example's k rows when the layer has one (storedKernelFor, or the
	// plans'): no patch matrix needed. Where the kernel's own layout of
	// ∇W_j is row-blocked, the kept arrays stay in it (no reorder per
	// example): their norms are per-row sums over lanes, and the clipped
	// sum is reordered once.
	c.storedPlan = nil
	storedPlanned := false
	if wTrain && c.rule == RuleMaterializeStored {
		if sk, l := c.storedKernelFor(k, h, w); sk != nil {
			storedPlanned = true
			c.storedPlan, c.storedBlk = sk, l
			if c.WS {
				c.wsBlk = tensor.EnsureSlice(c.wsBlk, l.Len)
				sk.BlockWeightGrad(c.wsBlk, c.wEff)
			}
		} else {
			storedPlanned = c.planFor(k) != nil
		}
	}
	if c.rule == RuleMaterializeStored && wTrain {
		c.stored = tensor.EnsureSlice(c.stored, m*c.storedLen())
	}
	needCols := wTrain && !pixel && !storedPlanned
	kt := k * t
	nw := par.Workers(nch)
	c.ensureWorkers(nw)
	par.EachN(nch, nw, func(wk, ch int) {
		sc := &c.scratch[wk]
		rows := chunk(ch)
		// The chunk's gathered output gradients feed the bias sums, the
		// input gradients without plans and every rule but the planned
		// stored one (which reads dy in place).
		var dyc []float32
		var ldy int
		if bTrain || needDX || (wTrain && !storedPlanned) {
			dyc, ldy = c.chunkDY(sc, rows, t, h, w, dy, nil, 1, needDX)
		}
		var col []float32
		var ld int
		if needCols {
			col, ld = c.cols(&sc.col, rows, t)
		}
		for gj := 0; gj < len(rows)/k; gj++ {
			j := rows[0]/k + gj
			lo := gj * kt // first column of the example
			var sq float64
			if bTrain {
				bg := c.bgrad[j*p : (j+1)*p]
				for o := 0; o < p; o++ {
					var s float32
					for _, v := range dyc[o*ldy+lo : o*ldy+lo+kt] {
						s += v
					}
					bg[o] = s
				}
				// The kept float32 sums are exactly what AccumulateClipped
				// adds (times c_j): exact for what is released, up to the
				// float64 sum of squares.
				sq = SumSquaresBound(tensor.SumSquares(bg), p)
			}
			if wTrain {
				var cl []float32
				if col != nil {
					cl = col[lo:]
				}
				switch c.rule {
				case RuleGhost:
					sq += c.ghostSq(sc, j, cl, ld, dyc[lo:], ldy, k, t, h, w, pixel)
				case RuleMaterialize:
					sq += c.materialize64(sc, cl, ld, dyc[lo:], ldy, kt)
				default:
					var dj []float32 // nil when planned: the plan reads dy in place
					if dyc != nil {
						dj = dyc[lo:]
					}
					sq += c.storedSq(sc, j, cl, ld, dj, ldy, kt)
				}
			}
			c.sq[j] = sq
		}
	})
	ctx.AddNorms(c, c.sq)
}

// AccumulateClipped adds Σ_j coef[j]·∇θ ℓ_j to the gradients. Examples with
// coef[j] = 0 are skipped entirely (see the type comment): the sum is the
// one over the other examples alone.
func (c *Conv2d) AccumulateClipped(coef []float32) {
	p, d := c.Cout, c.d()
	m := len(coef)
	if c.B != nil && !c.B.Frozen {
		for j := 0; j < m; j++ {
			cj := coef[j]
			if cj == 0 {
				continue
			}
			for o, v := range c.bgrad[j*p : (j+1)*p] {
				c.B.Grad[o] += cj * v
			}
		}
	}
	if c.W.Frozen {
		return
	}
	if c.rule == RuleMaterializeStored {
		// Σ_j c_j·g_j over the kept arrays, in example order per element;
		// under WS they are gradients w.r.t. Ŵ, and their sum goes through
		// the WS Jacobian once. Blocked arrays are summed in their layout
		// and the sum reordered (an exact copy) once.
		n := c.storedLen()
		g := c.W.Grad
		var sum *tensor.SlotBuffers
		blocked := c.storedPlan != nil
		if c.WS || blocked {
			sum = tensor.AcquireSlots(2, n)
			defer sum.Release()
			g = sum.Slot(0)
		}
		par.For(n, 4096, func(lo, hi int) {
			if c.WS || blocked {
				clear(g[lo:hi])
			}
			for j := 0; j < m; j++ {
				cj := coef[j]
				if cj == 0 {
					continue
				}
				tensor.Axpy(g[lo:hi], cj, c.stored[j*n+lo:j*n+hi])
			}
		})
		if blocked {
			plain := sum.Slot(1)[:p*d]
			c.storedPlan.UnblockWeightGrad(plain, g)
			g = plain
			if !c.WS {
				tensor.Add(c.W.Grad, c.W.Grad, g)
			}
		}
		if c.WS {
			c.wsBackward(c.W.Grad, g, true)
		}
		return
	}
	b := c.x.Shape[0]
	k := c.group
	t := c.dy.Shape[2] * c.dy.Shape[3]
	// The rows that take part: those of examples with a non-zero
	// coefficient, chunked as a batch of just those rows would be.
	rows := c.rows[:0]
	for r := 0; r < b; r++ {
		if coef[r/k] != 0 {
			rows = append(rows, r)
		}
	}
	c.rows = rows
	na := len(rows)
	if na == 0 {
		return
	}
	cs := chunkSize(na, t, 1)
	nch := (na + cs - 1) / cs
	// The bias was added above, from the kept per-example sums.
	if c.hasPlans() && c.accumulatePlanned(rows, false, t, c.dy.Data, coef, k) {
		return
	}
	c.accumulate(nch, false, func(ch int) []int { return rows[ch*cs : min((ch+1)*cs, na)] }, t,
		func(sc *convScratch, rs []int) ([]float32, int) {
			return c.gatherDY(&sc.dyc, c.dy.Data, rs, t, coef, k)
		})
}

func ensure64(buf []float64, n int) []float64 {
	if cap(buf) >= n {
		return buf[:n]
	}
	return make([]float64, n)
}

// storedSq forms ∇Ŵ_j = dy_j·col_jᵀ in float32 over the example's kt
// columns (with col nil: by the layer's plan of k rows, from x and dy),
// keeps it for AccumulateClipped and returns its squared norm. Without WS
// the kept float32 gradient is exactly what AccumulateClipped adds (times
// c_j), so this norm is exact for what is released; the only rounding left
// is the float64 sum of squares, bounded by γ⁶⁴_{p·d}. Under WS the kept
// array is the gradient w.r.t. Ŵ, AccumulateClipped maps Σ_j c_j·∇Ŵ_j
// through the WS Jacobian once, and the norm is storedWSSq's upper bound of
// the exact ‖J_ws(∇Ŵ_j)‖² (as the ghost rule's, a bound of the exact
// gradient of the kept array; the released sum rounds after it).
func (c *Conv2d) storedSq(sc *convScratch, j int, col []float32, ld int, dyc []float32, ldy, kt int) float64 {
	p, d := c.Cout, c.d()
	n := c.storedLen()
	g := c.stored[j*n : (j+1)*n]
	if col == nil {
		// Planned: the example's rows [j·k, (j+1)·k) are consecutive.
		k := c.group
		plane := c.Cin * c.x.Shape[2] * c.x.Shape[3]
		t := c.dy.Shape[2] * c.dy.Shape[3]
		x, dy := c.x.Data[j*k*plane:(j+1)*k*plane], c.dy.Data[j*k*p*t:(j+1)*k*p*t]
		if c.storedPlan != nil {
			c.storedPlan.BackwardWeightsBlocked(g, x, dy)
		} else {
			c.plan(k).BackwardWeights(g, x, dy)
		}
	} else {
		tensor.SgemmSerial(false, true, p, d, kt, 1, dyc, ldy, col, ld, 0, g, d)
	}
	if c.WS {
		return c.storedWSSq(sc, g)
	}
	// Zero padding of a blocked array adds exact zeros.
	return SumSquaresBound(tensor.SumSquares(g), n)
}

// storedLen is the length of one example's kept array: p·d, or the
// blocked layout's (padded) length.
func (c *Conv2d) storedLen() int {
	if c.storedPlan != nil {
		return c.storedBlk.Len
	}
	return c.Cout * c.d()
}

// storedPlain returns example j's kept array in plain p×d order (a copy
// when it is blocked).
func (c *Conv2d) storedPlain(j int) []float32 {
	n := c.storedLen()
	g := c.stored[j*n : (j+1)*n]
	if c.storedPlan == nil {
		return g
	}
	out := make([]float32, c.Cout*c.d())
	c.storedPlan.UnblockWeightGrad(out, g)
	return out
}

// ghostSq returns an upper bound of ‖∇W_j‖² by the ghost rule: Gram
// matrices of the example's patches and output gradients in float64, their
// inner product with its error bound (gramInner), and with WS the
// correction of wsCorrection; when that correction leaves too loose a bound,
// the gradient is materialised in float64 (materialize64).
func (c *Conv2d) ghostSq(sc *convScratch, j int, col []float32, ld int, dyc []float32, ldy, k, t, h, w int, pixel bool) float64 {
	p := c.Cout
	kt := k * t
	eA := c.patchGram(sc, j, col, ld, k, t, h, w, pixel)
	// Output gradients, scaled by 1/s_o under WS: dy·(1/s) of two float32
	// numbers is exact in float64, so only the Gram's own sums round.
	var scale []float32
	if c.WS {
		scale = c.wsInvStd
	}
	sc.gramG = ensure64(sc.gramG, kt*kt)
	tensor.Gram64(sc.gramG, kt, dyc, p, kt, ldy, scale)
	sc.vec = ensure64(sc.vec, 2*kt)
	est, upper := gramInner(sc.gramA, sc.gramG, kt, eA, gamma(p+1, unit64), sc.vec)
	if !c.WS {
		return upper
	}
	corrEst, corrLo := c.wsCorrection(sc, j, dyc, ldy, k, t, eA)
	if v := est - corrEst; v > 0 && (upper-corrLo)-v <= wsGhostSlack*v {
		return up64(upper-corrLo, 1)
	}
	if col == nil {
		col, ld = c.cols(&sc.col1, c.rows[j*k:(j+1)*k], t)
	}
	return c.materialize64(sc, col, ld, dyc, ldy, kt)
}

// materialize64 returns an upper bound of ‖∇W_j‖² from the example's
// gradient formed in float64, ∇Ŵ_j = G·Aᵀ over its kt columns (dy·a of two
// float32 numbers is exact in float64, so each entry is within
// γ⁶⁴_{kt}·Σ_s|dy_os||a_rs| of the exact one, and row o within
// e_o = γ⁶⁴_{kt}·Σ_s|dy_os|‖a_s‖ in norm, by Minkowski's inequality).
//
// Without WS, ‖g_o‖ ≤ ‖g̃_o‖ + e_o. With WS the gradient is
// (1/s_o)·P·g_o (wsCorrection's P), applied here in float64 (its own arithmetic, whatever wsBackward does):
// ‖P g_o‖ ≤ ‖P g̃_o‖ + ‖P‖₂·e_o with ‖P‖₂ ≤ 1 + ‖ŵ_o‖²/n (triangle
// inequality: I − 11ᵀ/n is a projection), and the computed h̃ = fl(P g̃_o/s_o)
// is within (1/s_o)·(γ⁶⁴_{n+2}‖g̃_o‖(1 + ‖ŵ_o‖²/n) + 5u₆₄(‖g̃_o‖ + √n|m̃| +
// ‖ŵ_o‖|π̃|)) of it (the errors of the mean m̃ and projection π̃ over n terms,
// and five roundings per entry).
func (c *Conv2d) materialize64(sc *convScratch, col []float32, ld int, dyc []float32, ldy, kt int) float64 {
	p, d := c.Cout, c.d()
	n := float64(d)
	sc.a64 = ensure64(sc.a64, d*kt)
	sc.vec = ensure64(sc.vec, 2*kt)
	alpha := sc.vec[:kt]
	clear(alpha)
	for r := 0; r < d; r++ {
		src := col[r*ld : r*ld+kt]
		dst, al := sc.a64[r*kt:r*kt+len(src)], alpha[:len(src)]
		for q, v := range src {
			f := float64(v)
			dst[q] = f
			al[q] += f * f
		}
	}
	for q, s := range alpha {
		alpha[q] = normUpper(s, d)
	}
	sc.g64 = ensure64(sc.g64, p*kt)
	for o := 0; o < p; o++ {
		src := dyc[o*ldy : o*ldy+kt]
		dst := sc.g64[o*kt : o*kt+len(src)]
		for q, v := range src {
			dst[q] = float64(v)
		}
	}
	sc.gw64 = ensure64(sc.gw64, p*d)
	tensor.DgemmSerial(false, true, p, d, kt, 1, sc.g64, kt, sc.a64, kt, 0, sc.gw64, d)
	eT := gamma(kt+1, unit64)
	var total float64
	for o := 0; o < p; o++ {
		var eg float64
		for q, g := range sc.g64[o*kt : (o+1)*kt] {
			eg += math.Abs(g) * alpha[q]
		}
		eg *= 2 * eT
		row := sc.gw64[o*d : (o+1)*d]
		var gsq float64
		for _, v := range row {
			gsq += v * v
		}
		gn := normUpper(gsq, d)
		if !c.WS {
			r := gn + eg
			total += r * r
			continue
		}
		wr := c.wEff[o*d : (o+1)*d]
		var sg, sgw float64
		for i, v := range row {
			sg += v
			sgw += v * float64(wr[i])
		}
		mean, proj := sg/n, sgw/n
		inv := float64(c.wsInvStd[o])
		var hsq float64
		for i, v := range row {
			h := (v - mean - float64(wr[i])*proj) * inv
			hsq += h * h
		}
		wn := normUpper(c.wsRow[o].sq, d)
		pn := 1 + wn*wn/n
		errh := inv * (gamma(d+2, unit64)*gn*pn + 5*unit64*(gn+math.Sqrt(n)*math.Abs(mean)+wn*math.Abs(proj)))
		r := normUpper(hsq, d) + 2*errh + up64(inv*pn*eg, 3)
		total += r * r
	}
	return up64(total*(1+gamma(p+1, unit64)), 2)
}
