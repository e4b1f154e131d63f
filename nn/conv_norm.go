package nn

import (
	"math"

	"dptrain/internal/par"
	"dptrain/tensor"
)

// Per-example norm rules of Conv2d. Each returns a proven upper bound of the
// exact squared norm of the example's weight gradient (normbound.go): the
// clip factor computed from it never lets an example contribute more than C.
// perExample runs the PerExample backward pass: input gradients, each
// example's bias gradient (kept for AccumulateClipped) and its squared
// gradient norm under the chosen rule. Chunks are independent (no sums
// across chunks), so their assignment to workers does not matter.
func (c *Conv2d) perExample(dy *tensor.Tensor, ctx *BackwardContext, k, t, nch int, chunk func(ch int) []int, h, w int, needDX bool) {
	b := c.x.Shape[0]
	p, d := c.Cout, c.d()
	m := b / k
	c.dy, c.group = dy, k
	c.method = c.chooseMethod(m, k, t, ctx.MaterializeBudget)
	wTrain := !c.W.Frozen
	bTrain := c.B != nil && !c.B.Frozen
	c.sq = growF64(c.sq, m)
	c.bgrad = tensor.EnsureSlice(c.bgrad, m*p)
	if c.method == RuleMaterializeStored && wTrain {
		c.stored = tensor.EnsureSlice(c.stored, m*p*d)
	}
	pixel := wTrain && c.method == RuleGhost && c.usePixelGram(h, w, k, t)
	if pixel {
		c.pix.build(c, h, w, k)
	}
	needCols := wTrain && !pixel
	kt := k * t
	nw := par.Workers(nch)
	c.ensureWorkers(nw)
	par.EachN(nch, nw, func(wk, ch int) {
		sc := &c.scratch[wk]
		rows := chunk(ch)
		dyc, ldy := c.chunkDY(sc, rows, t, h, w, dy, nil, 1, needDX)
		var col []float32
		var ld int
		if needCols {
			col, ld = c.cols(&sc.col, rows, t)
		}
		for gj := 0; gj < len(rows)/k; gj++ {
			j := rows[0]/k + gj
			lo := gj * kt // first column of the example
			bg := c.bgrad[j*p : (j+1)*p]
			for o := 0; o < p; o++ {
				var s float32
				for _, v := range dyc[o*ldy+lo : o*ldy+lo+kt] {
					s += v
				}
				bg[o] = s
			}
			var sq float64
			if bTrain {
				// The kept float32 sums are exactly what AccumulateClipped
				// adds (times c_j): exact for what is released, up to the
				// float64 sum of squares.
				for _, v := range bg {
					sq += float64(v) * float64(v)
				}
				sq = up64(sq*(1+gamma(p+1, unit64)), 1)
			}
			if wTrain {
				var cl []float32
				if col != nil {
					cl = col[lo:]
				}
				switch c.method {
				case RuleGhost:
					sq += c.ghostSq(sc, j, cl, ld, dyc[lo:], ldy, k, t, h, w, pixel)
				case RuleMaterialize:
					sq += c.materialize64(sc, cl, ld, dyc[lo:], ldy, kt)
				default:
					sq += c.storedSq(sc, j, cl, ld, dyc[lo:], ldy, kt)
				}
			}
			c.sq[j] = sq
		}
	})
	ctx.AddNorms(c, c.sq)
}

func ensure64(buf []float64, n int) []float64 {
	if cap(buf) >= n {
		return buf[:n]
	}
	return make([]float64, n)
}

// storedSq forms ∇W_j = dy_j·col_jᵀ in float32 over the example's kt
// columns (through WS when enabled), keeps it for AccumulateClipped and
// returns its squared norm. The kept float32 gradient is exactly what
// AccumulateClipped adds (times c_j), so this norm is exact for what is
// released; the only rounding left is the float64 sum of squares, bounded by
// γ⁶⁴_{p·d}.
func (c *Conv2d) storedSq(sc *convScratch, j int, col []float32, ld int, dyc []float32, ldy, kt int) float64 {
	p, d := c.Cout, c.d()
	dst := c.stored[j*p*d : (j+1)*p*d]
	g := dst
	if c.WS {
		sc.gw = tensor.EnsureSlice(sc.gw, p*d)
		g = sc.gw
	}
	tensor.SgemmSerial(false, true, p, d, kt, 1, dyc, ldy, col, ld, 0, g, d)
	if c.WS {
		for o := 0; o < p; o++ {
			c.wsBackwardRow(dst[o*d:(o+1)*d], g[o*d:(o+1)*d], o, false)
		}
	}
	var s float64
	for _, v := range dst {
		s += float64(v) * float64(v)
	}
	return up64(s*(1+gamma(p*d+1, unit64)), 1)
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
	sc.g64 = ensure64(sc.g64, p*kt)
	for o := 0; o < p; o++ {
		s := 1.0
		if c.WS {
			s = float64(c.wsInvStd[o])
		}
		src := dyc[o*ldy : o*ldy+kt]
		dst := sc.g64[o*kt : o*kt+len(src)]
		for q, v := range src {
			dst[q] = float64(v) * s
		}
	}
	sc.gramG = ensure64(sc.gramG, kt*kt)
	tensor.DsyrkSerial(true, kt, p, 1, sc.g64, kt, 0, sc.gramG, kt)
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

// pixelMap maps each (kernel offset κ, example column s) of the patch
// matrix to the input pixel it reads (an index into the example's k
// stacked input planes), or to np, a pixel that is always 0 (padding).
type pixelMap struct {
	h, w, k, kk, stride, pad int
	np, kt                   int
	idx                      []int32 // κ·kt + s
}

func (pm *pixelMap) build(c *Conv2d, h, w, k int) {
	if pm.idx != nil && pm.h == h && pm.w == w && pm.k == k && pm.kk == c.K && pm.stride == c.Stride && pm.pad == c.Pad {
		return
	}
	oh, ow := c.outHW(h, w)
	t := oh * ow
	*pm = pixelMap{h: h, w: w, k: k, kk: c.K, stride: c.Stride, pad: c.Pad, np: k * h * w, kt: k * t}
	pm.idx = make([]int32, c.K*c.K*pm.kt)
	for ki := 0; ki < c.K; ki++ {
		for kj := 0; kj < c.K; kj++ {
			row := pm.idx[(ki*c.K+kj)*pm.kt:][:pm.kt]
			for a := 0; a < k; a++ {
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						iy, ix := oy*c.Stride+ki-c.Pad, ox*c.Stride+kj-c.Pad
						v := int32(pm.np)
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							v = int32(a*h*w + iy*w + ix)
						}
						row[a*t+oy*ow+ox] = v
					}
				}
			}
		}
	}
}

// patchGram sets sc.gramA (upper triangle, kt×kt) to the float64 Gram
// matrix Ã_st = a_s·a_t of example j's patch columns, and with WS sc.colsum
// and sc.colabs to Σ_r a_rs and Σ_r |a_rs|. It returns e_A with
// |Ã_st − A_st| ≤ e_A·Σ_r|a_rs||a_rt| (and |Δcolsum_s| ≤ e_A·colabs_s).
//
// Direct: the patch block (float32, exact in float64) goes through one
// float64 SYRK over d terms: e_A = γ⁶⁴_{d+1}.
//
// Pixel: every patch entry is an input pixel x[c, u] or a padding zero, so
// A_st = Σ_κ P[u_κ(s), u_κ(t)] over the K² kernel offsets κ, with
// P[u, v] = Σ_c x[c,u]·x[c,v] the Gram of the input pixels (Cin terms). P is
// K² times cheaper than the patch Gram for stride-1 convolutions; its
// entries are within γ⁶⁴_{Cin}·Σ_c|x_cu||x_cv| of the exact ones and the K²
// additions add γ⁶⁴_{K²}: e_A = γ⁶⁴_{Cin+K²+1} (≤ γ⁶⁴_{d+1} for K ≥ 2).
func (c *Conv2d) patchGram(sc *convScratch, j int, col []float32, ld, k, t, h, w int, pixel bool) float64 {
	kt := k * t
	ws := c.WS
	sc.gramA = ensure64(sc.gramA, kt*kt)
	if ws {
		sc.colsum = ensure64(sc.colsum, kt)
		sc.colabs = ensure64(sc.colabs, kt)
		clear(sc.colsum)
		clear(sc.colabs)
	}
	if !pixel {
		d := c.d()
		sc.a64 = ensure64(sc.a64, d*kt)
		for r := 0; r < d; r++ {
			src := col[r*ld : r*ld+kt]
			dst := sc.a64[r*kt : r*kt+len(src)]
			if !ws {
				for q, v := range src {
					dst[q] = float64(v)
				}
				continue
			}
			cs, ca := sc.colsum[:len(src)], sc.colabs[:len(src)]
			for q, v := range src {
				f := float64(v)
				dst[q] = f
				cs[q] += f
				ca[q] += math.Abs(f)
			}
		}
		tensor.DsyrkSerial(true, kt, d, 1, sc.a64, kt, 0, sc.gramA, kt)
		return gamma(d+1, unit64)
	}
	pm := &c.pix
	np, hw, cin := pm.np, h*w, c.Cin
	n1 := np + 1 // the extra pixel np is the padding zero
	sc.a64 = ensure64(sc.a64, cin*n1)
	plane := cin * hw
	for a := 0; a < k; a++ {
		xi := c.x.Data[(j*k+a)*plane : (j*k+a+1)*plane]
		for ci := 0; ci < cin; ci++ {
			src := xi[ci*hw : (ci+1)*hw]
			dst := sc.a64[ci*n1+a*hw : ci*n1+a*hw+len(src)]
			for u, v := range src {
				dst[u] = float64(v)
			}
		}
	}
	for ci := 0; ci < cin; ci++ {
		sc.a64[ci*n1+np] = 0
	}
	sc.pgr = ensure64(sc.pgr, n1*n1)
	tensor.DsyrkSerial(true, n1, cin, 1, sc.a64, n1, 0, sc.pgr, n1)
	for u := 0; u < n1; u++ { // mirror the upper triangle
		for v := u + 1; v < n1; v++ {
			sc.pgr[v*n1+u] = sc.pgr[u*n1+v]
		}
	}
	kk := c.K * c.K
	if ws {
		// Σ_r a_rs = Σ_κ (Σ_c x[c, u_κ(s)]); the same for |·|.
		sc.vec = ensure64(sc.vec, 2*n1)
		ps, pa := sc.vec[:n1], sc.vec[n1:2*n1]
		clear(ps)
		clear(pa)
		for ci := 0; ci < cin; ci++ {
			for u, f := range sc.a64[ci*n1 : (ci+1)*n1] {
				ps[u] += f
				pa[u] += math.Abs(f)
			}
		}
		for κ := 0; κ < kk; κ++ {
			for s, u := range pm.idx[κ*kt : (κ+1)*kt] {
				sc.colsum[s] += ps[u]
				sc.colabs[s] += pa[u]
			}
		}
	}
	clear(sc.gramA)
	for κ := 0; κ < kk; κ++ {
		ik := pm.idx[κ*kt : (κ+1)*kt]
		for s, u := range ik {
			if int(u) == np {
				continue // padding: the row of P is zero
			}
			prow := sc.pgr[int(u)*n1 : (int(u)+1)*n1]
			grow := sc.gramA[s*kt : (s+1)*kt]
			for q := s; q < kt; q++ {
				grow[q] += prow[ik[q]]
			}
		}
	}
	return gamma(cin+kk+1, unit64)
}

// materialize64 returns an upper bound of ‖∇W_j‖² from the example's
// gradient formed in float64, ∇Ŵ_j = G·Aᵀ over its kt columns (dy·a of two
// float32 numbers is exact in float64, so each entry is within
// γ⁶⁴_{kt}·Σ_s|dy_os||a_rs| of the exact one, and row o within
// e_o = γ⁶⁴_{kt}·Σ_s|dy_os|‖a_s‖ in norm, by Minkowski's inequality).
//
// Without WS, ‖g_o‖ ≤ ‖g̃_o‖ + e_o. With WS the gradient is
// (1/s_o)·P·g_o (wsCorrection's P), applied in float64 as wsBackward does:
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
