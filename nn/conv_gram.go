package nn

import (
	"math"

	"dptrain/tensor"
)

// The Gram matrix of one example's patch columns, for Conv2d's ghost rule:
// from the patches (direct), or from the Gram of the input pixels.

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
		return c.patchGramDirect(sc, col, ld, kt)
	}
	return c.patchGramPixel(sc, j, k, kt, h, w)
}

// patchGramDirect is patchGram from the example's patch columns (col, row
// stride ld): one float64 SYRK over d terms.
func (c *Conv2d) patchGramDirect(sc *convScratch, col []float32, ld, kt int) float64 {
	ws := c.WS
	d := c.d()
	if !ws {
		tensor.Gram64(sc.gramA, kt, col, d, kt, ld, nil)
		return gamma(d+1, unit64)
	}
	sc.a64 = ensure64(sc.a64, d*kt)
	for r := 0; r < d; r++ {
		src := col[r*ld : r*ld+kt]
		dst := sc.a64[r*kt : r*kt+len(src)]
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

// patchGramPixel is patchGram from the Gram of example j's input pixels
// (its k rows of h×w planes) through the pixel map c.pix.
func (c *Conv2d) patchGramPixel(sc *convScratch, j, k, kt, h, w int) float64 {
	ws := c.WS
	pm := &c.pix
	np, hw, cin := pm.np, h*w, c.Cin
	n1 := np + 1 // the extra pixel np is the padding zero
	plane := cin * hw
	// The example's pixels as a Cin × np matrix: its k input rows side by
	// side (a view of x when k = 1).
	xs, ldx := c.x.Data[j*plane:(j+1)*plane], hw
	if k > 1 {
		sc.x32 = tensor.EnsureSlice(sc.x32, cin*np)
		for a := 0; a < k; a++ {
			xi := c.x.Data[(j*k+a)*plane : (j*k+a+1)*plane]
			for ci := 0; ci < cin; ci++ {
				copy(sc.x32[ci*np+a*hw:ci*np+(a+1)*hw], xi[ci*hw:(ci+1)*hw])
			}
		}
		xs, ldx = sc.x32, np
	}
	sc.pgr = ensure64(sc.pgr, n1*n1)
	tensor.Gram64(sc.pgr, n1, xs, cin, np, ldx, nil)
	for u := 0; u < np; u++ { // the padding pixel's row and column are 0
		sc.pgr[u*n1+np] = 0
	}
	clear(sc.pgr[np*n1 : n1*n1])
	kk := c.K * c.K
	if ws {
		// Σ_r a_rs = Σ_κ (Σ_c x[c, u_κ(s)]); the same for |·|.
		sc.vec = ensure64(sc.vec, 2*n1)
		ps, pa := sc.vec[:n1], sc.vec[n1:2*n1]
		clear(ps)
		clear(pa)
		for ci := 0; ci < cin; ci++ {
			for u, v := range xs[ci*ldx : ci*ldx+np] {
				f := float64(v)
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
	// A_st = Σ_κ P[u_κ(s), u_κ(t)], the padding pixel's row skipped (its
	// column is zero).
	tensor.GatherGram(sc.gramA, kt, sc.pgr, n1, pm.idx, kk, int32(np))
	return gamma(cin+kk+1, unit64)
}
