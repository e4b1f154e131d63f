package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"dptrain/tensor"
)

// Conv2d is a 2-d convolution with a square kernel, stride and zero padding,
// computed per example as one GEMM over the im2col patch matrix:
// y_i (Cout×T) = Ŵ (Cout×d) · col_i (d×T), d = Cin·K·K, T = Hout·Wout.
//
// With WS (weight standardisation, Qiao et al. 2019), Ŵ is W with each output
// row standardised to zero mean and unit variance (ε = WSEpsilon); otherwise
// Ŵ = W.
//
// Per-example norms (PerExample mode) use one of three rules, chosen per call
// by cost (mixed ghost clipping, Bu et al. 2022):
//
//   - "materialize-stored": ∇W_i = dy_i·col_iᵀ is formed and kept when
//     B·|W| fits the materialise budget; the clipped sum is then a weighted
//     sum of the kept gradients. Chosen for small early layers with many
//     positions per example, where recomputing costs more than the memory
//     traffic of keeping (normCosts).
//   - "ghost": ‖∇Ŵ_i‖² = ⟨col_iᵀcol_i, dy_iᵀdy_i⟩ from two T×T Gram
//     matrices, O(T²(d+Cout)); the clipped sum is one more pass of weighted
//     per-example GEMMs. Chosen when T is small (late layers).
//   - "materialize": ∇W_i formed to take its norm and dropped; the clipped
//     sum recomputes it with the clip factor. Chosen when T is large but
//     storage is not allowed.
//
// Weight standardisation is linear in ∇Ŵ given W: ∇W = J_ws(∇Ŵ), applied row
// by row. The ghost rule stays exact under WS: for row o with n = d,
// ‖∇w_o‖² = (‖g_o‖² − (Σg_o)²/n − (2/n − ‖ŵ_o‖²/n²)(g_o·ŵ_o)²)/s_o², where
// g_o = ∇ŵ_o, Σg_o = Σ_t dy[o,t]·colsum[t] and g_o·ŵ_o = Σ_t dy[o,t]·z[o,t]
// with z the pre-bias output; ‖g_o‖²/s_o² is the ghost norm of dy scaled by
// 1/s_o.
type Conv2d struct {
	Cin, Cout, K, Stride, Pad int
	WS                        bool
	W, B                      *Param // B may be nil

	// ForceNorm, when set, forces the per-example norm rule (for tests and
	// benchmarks): "ghost", "materialize" or "materialize-stored".
	ForceNorm string

	x, y, dx, dy *tensor.Tensor
	wEff         []float32 // Ŵ (alias of W.Value without WS)
	wsInvStd     []float32 // 1/s_o
	scratch      []convScratch
	method       string
	group        int
	stored       []float32 // materialize-stored: m × Cout·d
	bgrad        []float32 // per-example bias gradients: m × Cout
	sq           []float64
	gEff         []float32
}

// WSEpsilon is the variance floor of weight standardisation.
const WSEpsilon = 1e-5

type convScratch struct {
	col, dyc, yc, dcol, dys     []float32 // chunk matrices: d×nT, p×nT, p×nT, d×nT, p×nT
	acc, accB, gw, gramA, gramG []float32
	colsum                      []float64
}

// chunkCols is the target number of columns (examples × positions) of one
// chunk's GEMMs: late layers with few positions per example batch several
// examples into one product instead of many skinny ones.
const chunkCols = 512

// chunkSize returns how many batch rows one chunk holds: enough for about
// chunkCols columns, few enough to keep every worker busy, and a multiple of
// the example group k.
func chunkSize(b, t, k int) int {
	cs := (chunkCols + t - 1) / t
	per := (b + tensor.Workers(b) - 1) / tensor.Workers(b)
	cs = min(cs, per)
	cs = max(k, cs/k*k)
	return cs
}

// NewConv2d returns a convolution with Kaiming-normal (fan-out) weights, as
// torchvision initialises ResNets, and zero bias.
func NewConv2d(name string, cin, cout, k, stride, pad int, bias, ws bool, r *rand.Rand) *Conv2d {
	c := &Conv2d{Cin: cin, Cout: cout, K: k, Stride: stride, Pad: pad, WS: ws,
		W: newParam(name+".weight", false, cout, cin, k, k)}
	kaimingNormal(r, c.W.Value, cout*k*k)
	if bias {
		c.B = newParam(name+".bias", true, cout)
	}
	return c
}

func (c *Conv2d) Describe() string {
	s := fmt.Sprintf("conv %d→%d k%d s%d p%d", c.Cin, c.Cout, c.K, c.Stride, c.Pad)
	if c.WS {
		s += " ws"
	}
	return s
}

func (c *Conv2d) Params() []*Param {
	if c.B == nil {
		return []*Param{c.W}
	}
	return []*Param{c.W, c.B}
}

func (c *Conv2d) Trainable() bool    { return anyTrainable(c.W, c.B) }
func (c *Conv2d) NormMethod() string { return c.method }

func (c *Conv2d) d() int { return c.Cin * c.K * c.K }

func (c *Conv2d) direct() bool { return c.K == 1 && c.Stride == 1 && c.Pad == 0 }

func (c *Conv2d) outHW(h, w int) (int, int) {
	return tensor.ConvOut(h, c.K, c.Stride, c.Pad), tensor.ConvOut(w, c.K, c.Stride, c.Pad)
}

func (c *Conv2d) scr(w int) *convScratch {
	for len(c.scratch) <= w {
		c.scratch = append(c.scratch, convScratch{})
	}
	return &c.scratch[w]
}

// cols returns the patch matrix of batch rows [r0, r0+n): d × n·T with
// row stride ld = n·T, example a in columns [a·T, (a+1)·T). A single row of a
// 1×1, stride-1, unpadded convolution is x itself (no copy).
func (c *Conv2d) cols(sc *convScratch, r0, n, t int) ([]float32, int) {
	h, w := c.x.Shape[2], c.x.Shape[3]
	d := c.d()
	plane := c.Cin * h * w
	if c.direct() && n == 1 {
		return c.x.Data[r0*plane : (r0+1)*plane], t
	}
	ld := n * t
	sc.col = tensor.EnsureSlice(sc.col, d*ld)
	for a := 0; a < n; a++ {
		xi := c.x.Data[(r0+a)*plane : (r0+a+1)*plane]
		if c.direct() {
			for r := 0; r < d; r++ {
				copy(sc.col[r*ld+a*t:r*ld+(a+1)*t], xi[r*t:(r+1)*t])
			}
			continue
		}
		tensor.Im2colStrided(sc.col[a*t:], ld, xi, c.Cin, h, w, c.K, c.K, c.Stride, c.Pad)
	}
	return sc.col, ld
}

// gatherDY returns the output gradients of rows [r0, r0+n) as a p × n·T
// matrix (row stride ld), each row r scaled by scale(r) when scale is not nil.
func (c *Conv2d) gatherDY(buf *[]float32, dy []float32, r0, n, t int, scale func(r int) float32) ([]float32, int) {
	p := c.Cout
	if n == 1 && scale == nil {
		return dy[r0*p*t : (r0+1)*p*t], t
	}
	ld := n * t
	*buf = tensor.EnsureSlice(*buf, p*ld)
	out := *buf
	for a := 0; a < n; a++ {
		src := dy[(r0+a)*p*t : (r0+a+1)*p*t]
		s := float32(1)
		if scale != nil {
			s = scale(r0 + a)
		}
		for o := 0; o < p; o++ {
			dst := out[o*ld+a*t : o*ld+(a+1)*t]
			if s == 1 {
				copy(dst, src[o*t:(o+1)*t])
				continue
			}
			for q, v := range src[o*t : (o+1)*t] {
				dst[q] = v * s
			}
		}
	}
	return out, ld
}

// Im2colInto is tensor.Im2col with a square kernel.
func Im2colInto(dst, x []float32, cin, h, w, k, stride, pad int) {
	tensor.Im2col(dst, x, cin, h, w, k, k, stride, pad)
}

func (c *Conv2d) standardize() {
	if !c.WS {
		c.wEff = c.W.Value
		return
	}
	d := c.d()
	c.wEff = tensor.EnsureSlice(c.wEff, len(c.W.Value))
	if cap(c.wsInvStd) < c.Cout {
		c.wsInvStd = make([]float32, c.Cout)
	}
	c.wsInvStd = c.wsInvStd[:c.Cout]
	for o := 0; o < c.Cout; o++ {
		row := c.W.Value[o*d : (o+1)*d]
		var mu, v float64
		for _, x := range row {
			mu += float64(x)
		}
		mu /= float64(d)
		for _, x := range row {
			v += (float64(x) - mu) * (float64(x) - mu)
		}
		v /= float64(d)
		inv := 1 / math.Sqrt(v+WSEpsilon)
		c.wsInvStd[o] = float32(inv)
		out := c.wEff[o*d : (o+1)*d]
		for j, x := range row {
			out[j] = float32((float64(x) - mu) * inv)
		}
	}
}

// wsBackward maps a gradient g w.r.t. Ŵ to the gradient w.r.t. W, adding it
// into dst: ∂L/∂w_o = (g_o − mean(g_o) − ŵ_o·(g_o·ŵ_o)/n)/s_o.
func (c *Conv2d) wsBackward(dst, g []float32, add bool) {
	d := c.d()
	for o := 0; o < c.Cout; o++ {
		gr, wr, out := g[o*d:(o+1)*d], c.wEff[o*d:(o+1)*d], dst[o*d:(o+1)*d]
		var sg, sgw float64
		for j, v := range gr {
			sg += float64(v)
			sgw += float64(v) * float64(wr[j])
		}
		mean, proj := sg/float64(d), sgw/float64(d)
		inv := float64(c.wsInvStd[o])
		for j, v := range gr {
			r := float32((float64(v) - mean - float64(wr[j])*proj) * inv)
			if add {
				out[j] += r
			} else {
				out[j] = r
			}
		}
	}
}

func (c *Conv2d) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	if len(x.Shape) != 4 || x.Shape[1] != c.Cin {
		shapePanic("Conv2d.Forward", "input %v, want [B, %d, H, W]", x.Shape, c.Cin)
	}
	b, h, w := x.Shape[0], x.Shape[2], x.Shape[3]
	oh, ow := c.outHW(h, w)
	if oh < 1 || ow < 1 {
		shapePanic("Conv2d.Forward", "input %dx%d too small for kernel %d pad %d", h, w, c.K, c.Pad)
	}
	c.x = x
	c.standardize()
	c.y = tensor.Ensure(c.y, b, c.Cout, oh, ow)
	d, t, p := c.d(), oh*ow, c.Cout
	cs := chunkSize(b, t, 1)
	nch := (b + cs - 1) / cs
	c.ensureWorkers(nch)
	tensor.ParallelEach(nch, func(wk, ch int) {
		sc := &c.scratch[wk]
		r0 := ch * cs
		n := min(cs, b-r0)
		col, ld := c.cols(sc, r0, n, t)
		if n == 1 {
			tensor.SgemmSerial(false, false, p, t, d, 1, c.wEff, d, col, ld, 0, c.y.Data[r0*p*t:(r0+1)*p*t], t)
		} else {
			sc.yc = tensor.EnsureSlice(sc.yc, p*ld)
			tensor.SgemmSerial(false, false, p, ld, d, 1, c.wEff, d, col, ld, 0, sc.yc, ld)
			for a := 0; a < n; a++ {
				yi := c.y.Data[(r0+a)*p*t : (r0+a+1)*p*t]
				for o := 0; o < p; o++ {
					copy(yi[o*t:(o+1)*t], sc.yc[o*ld+a*t:o*ld+(a+1)*t])
				}
			}
		}
		if c.B != nil {
			yc := c.y.Data[r0*p*t : (r0+n)*p*t]
			for a := 0; a < n; a++ {
				for o, bv := range c.B.Value {
					row := yc[(a*p+o)*t : (a*p+o+1)*t]
					for j := range row {
						row[j] += bv
					}
				}
			}
		}
	})
	return c.y
}

func (c *Conv2d) ensureWorkers(n int) {
	c.scr(tensor.Workers(n) - 1)
}

func (c *Conv2d) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	b, h, w := c.x.Shape[0], c.x.Shape[2], c.x.Shape[3]
	oh, ow := c.outHW(h, w)
	if len(dy.Shape) != 4 || dy.Shape[0] != b || dy.Shape[1] != c.Cout || dy.Shape[2] != oh || dy.Shape[3] != ow {
		shapePanic("Conv2d.Backward", "dy %v, want [%d %d %d %d]", dy.Shape, b, c.Cout, oh, ow)
	}
	d, t, p := c.d(), oh*ow, c.Cout
	train := c.Trainable()
	needDX := ctx.NeedDX
	if needDX {
		c.dx = tensor.Ensure(c.dx, c.x.Shape...)
	}
	k := 1
	if train && ctx.Mode == PerExample {
		k = ctx.group()
		if b%k != 0 {
			shapePanic("Conv2d.Backward", "batch %d not a multiple of group %d", b, k)
		}
	}
	cs := chunkSize(b, t, k)
	nch := (b + cs - 1) / cs
	c.ensureWorkers(nch)
	nw := tensor.Workers(nch)
	if !train || ctx.Mode == Accumulate {
		if train {
			for wk := 0; wk < nw; wk++ {
				sc := &c.scratch[wk]
				sc.acc = tensor.EnsureSlice(sc.acc, p*d)
				clear(sc.acc)
				sc.accB = tensor.EnsureSlice(sc.accB, p)
				clear(sc.accB)
			}
		}
		tensor.ParallelEach(nch, func(wk, ch int) {
			sc, r0, n, dyc, ldy := c.chunkDY(wk, ch, cs, b, t, h, w, dy, needDX)
			if train {
				col, ld := c.cols(sc, r0, n, t)
				tensor.SgemmSerial(false, true, p, d, ld, 1, dyc, ldy, col, ld, 1, sc.acc, d)
				for o := 0; o < p; o++ {
					var s float32
					for _, v := range dyc[o*ldy : o*ldy+ldy] {
						s += v
					}
					sc.accB[o] += s
				}
			}
		})
		if train {
			c.reduceInto(nw, d)
		}
		if needDX {
			return c.dx
		}
		return nil
	}
	// PerExample mode.
	m := b / k
	c.dy, c.group = dy, k
	c.method = c.chooseMethod(m, k, t, ctx.MaterializeBudget)
	wTrain := !c.W.Frozen
	c.sq = growF64(c.sq, m)
	c.bgrad = tensor.EnsureSlice(c.bgrad, m*p)
	if c.method == "materialize-stored" && wTrain {
		c.stored = tensor.EnsureSlice(c.stored, m*p*d)
	}
	tensor.ParallelEach(nch, func(wk, ch int) {
		sc, r0, n, dyc, ldy := c.chunkDY(wk, ch, cs, b, t, h, w, dy, needDX)
		var col []float32
		var ld int
		if wTrain {
			col, ld = c.cols(sc, r0, n, t)
		}
		var dys []float32
		if wTrain && c.WS && c.method == "ghost" {
			// output gradients with row o scaled by 1/s_o
			sc.dys = tensor.EnsureSlice(sc.dys, p*ldy)
			for o := 0; o < p; o++ {
				s := c.wsInvStd[o]
				for q, v := range dyc[o*ldy : o*ldy+ldy] {
					sc.dys[o*ldy+q] = v * s
				}
			}
			dys = sc.dys
		}
		for gj := 0; gj < n/k; gj++ {
			j := r0/k + gj
			lo := gj * k * t // first column of the example
			bg := c.bgrad[j*p : (j+1)*p]
			for o := 0; o < p; o++ {
				var s float32
				for _, v := range dyc[o*ldy+lo : o*ldy+lo+k*t] {
					s += v
				}
				bg[o] = s
			}
			var sq float64
			if c.B != nil && !c.B.Frozen {
				for _, v := range bg {
					sq += float64(v) * float64(v)
				}
			}
			if wTrain {
				if c.method == "ghost" {
					g, ldg := dyc, ldy
					if dys != nil {
						g = dys
					}
					gs := c.ghostSq(sc, col[lo:], ld, g[lo:], ldg, k*t)
					if c.WS {
						// gs − correction is exact in exact arithmetic, but
						// the subtraction cancels when the WS projection
						// removes most of the gradient (e.g. few inputs per
						// filter). Then the example's gradient is formed
						// directly instead: never a rounded-down norm.
						if corr := gs - c.wsGhostCorrection(sc, col[lo:], ld, dy.Data, j, k, t); corr >= 1e-3*gs {
							gs = corr
						} else {
							gs = c.materializeSq(sc, col[lo:], ld, dyc[lo:], ldy, k*t, j)
						}
					}
					sq += gs
				} else {
					sq += c.materializeSq(sc, col[lo:], ld, dyc[lo:], ldy, k*t, j)
				}
			}
			c.sq[j] = sq
		}
	})
	ctx.register(c, c.sq)
	if needDX {
		return c.dx
	}
	return nil
}

// chunkDY starts the backward work of chunk ch (rows [r0, r0+n) of b): it
// gathers the chunk's output gradients and computes its input gradients when
// needDX.
func (c *Conv2d) chunkDY(wk, ch, cs, b, t, h, w int, dy *tensor.Tensor, needDX bool) (sc *convScratch, r0, n int, dyc []float32, ldy int) {
	sc = &c.scratch[wk]
	r0 = ch * cs
	n = min(cs, b-r0)
	dyc, ldy = c.gatherDY(&sc.dyc, dy.Data, r0, n, t, nil)
	if needDX {
		c.backwardDX(sc, dyc, ldy, r0, n, h, w)
	}
	return sc, r0, n, dyc, ldy
}

// backwardDX computes the input gradients of rows [r0, r0+n) from their
// output gradients dyc (p × n·T, stride ldy): dcol = Ŵᵀ·dyc, then col2im.
func (c *Conv2d) backwardDX(sc *convScratch, dyc []float32, ldy, r0, n, h, w int) {
	d, p := c.d(), c.Cout
	plane := c.Cin * h * w
	t := ldy / n
	if c.direct() && n == 1 {
		tensor.SgemmSerial(true, false, d, t, p, 1, c.wEff, d, dyc, ldy, 0, c.dx.Data[r0*plane:(r0+1)*plane], t)
		return
	}
	sc.dcol = tensor.EnsureSlice(sc.dcol, d*ldy)
	tensor.SgemmSerial(true, false, d, ldy, p, 1, c.wEff, d, dyc, ldy, 0, sc.dcol, ldy)
	for a := 0; a < n; a++ {
		dxi := c.dx.Data[(r0+a)*plane : (r0+a+1)*plane]
		if c.direct() {
			for r := 0; r < d; r++ {
				copy(dxi[r*t:(r+1)*t], sc.dcol[r*ldy+a*t:r*ldy+(a+1)*t])
			}
			continue
		}
		tensor.Col2imStridedTo(dxi, sc.dcol[a*t:], ldy, c.Cin, h, w, c.K, c.K, c.Stride, c.Pad)
	}
}

// reduceInto sums the workers' accumulators and adds them (through the WS
// Jacobian when enabled) to the parameter gradients.
func (c *Conv2d) reduceInto(nw, d int) {
	acc := c.scratch[0].acc
	for wk := 1; wk < nw; wk++ {
		for j, v := range c.scratch[wk].acc {
			acc[j] += v
		}
		if c.scratch[wk].accB != nil {
			for j, v := range c.scratch[wk].accB {
				c.scratch[0].accB[j] += v
			}
		}
	}
	if !c.W.Frozen {
		if c.WS {
			c.wsBackward(c.W.Grad, acc, true)
		} else {
			for j, v := range acc {
				c.W.Grad[j] += v
			}
		}
	}
	if c.B != nil && !c.B.Frozen && c.scratch[0].accB != nil {
		for j, v := range c.scratch[0].accB {
			c.B.Grad[j] += v
		}
	}
}

func (c *Conv2d) chooseMethod(m, k, t, budget int) string {
	if c.ForceNorm != "" {
		return c.ForceNorm
	}
	if budget <= 0 {
		budget = defaultMaterializeBudget
	}
	kt, d, p := float64(k*t), float64(c.d()), float64(c.Cout)
	ghost, mat, store := normCosts(kt, d, p)
	ghostOK := kt*kt <= 1<<22
	if m*c.Cout*c.d() <= budget && store <= mat && (!ghostOK || store <= ghost) {
		return "materialize-stored"
	}
	if ghostOK && ghost < mat {
		return "ghost"
	}
	return "materialize"
}

// Per-example cost model of the norm rules, in multiply-adds of one large
// GEMM, for kt columns per example, d = Cin·K² and p = Cout:
//
//   - the per-example products (∇W_i = dy_i·col_iᵀ, or the two kt×kt Grams)
//     are small GEMMs, costing smallGEMMCost per multiply-add;
//   - ghost and materialize then recompute the clipped sum as one large GEMM
//     of kt·d·p multiply-adds per example;
//   - materialize-stored skips that GEMM but writes p·d floats per example
//     and reads them back in AccumulateClipped, storedFloatCost each.
//
// The constants were fitted on this project's 2-core VM with OpenBLAS
// (BenchmarkNormRules): storing wins for large kt (cnn-mnist's first
// layer, kt = 196), and loses to ghost for ScatterNet-CNN's layers
// (kt = 49 and 9): there the model-driven choice gave 25% more private
// throughput than storing whenever the budget allowed.
func normCosts(kt, d, p float64) (ghost, mat, store float64) {
	prod := kt * d * p
	ghost = smallGEMMCost*kt*kt*(d+p) + prod
	mat = smallGEMMCost*prod + prod
	store = smallGEMMCost*prod + storedFloatCost*d*p
	return ghost, mat, store
}

const (
	smallGEMMCost   = 1.6
	storedFloatCost = 48
)

// materializeSq forms ∇W_j = dy_j·col_jᵀ over the example's kt columns
// (through WS when enabled), returns its squared norm, and keeps it when the
// method is materialize-stored.
func (c *Conv2d) materializeSq(sc *convScratch, col []float32, ld int, dyc []float32, ldy, kt, j int) float64 {
	p, d := c.Cout, c.d()
	stored := c.method == "materialize-stored"
	// Without WS a stored gradient is written by the GEMM in place.
	var g []float32
	if stored && !c.WS {
		g = c.stored[j*p*d : (j+1)*p*d]
	} else {
		sc.gw = tensor.EnsureSlice(sc.gw, p*d)
		g = sc.gw
	}
	tensor.SgemmSerial(false, true, p, d, kt, 1, dyc, ldy, col, ld, 0, g, d)
	if c.WS {
		sc.acc = tensor.EnsureSlice(sc.acc, p*d)
		c.wsBackward(sc.acc, sc.gw, false)
		g = sc.acc
		if stored {
			copy(c.stored[j*p*d:(j+1)*p*d], g)
		}
	}
	var s float64
	for _, v := range g {
		s += float64(v) * float64(v)
	}
	return s
}

// ghostSq returns ‖G·Aᵀ‖²_F = ⟨AᵀA, GᵀG⟩ for the example's patches A (d×kt,
// stride ld) and output gradients G (p×kt, stride ldg): two kt×kt Gram
// matrices instead of the p×d gradient.
func (c *Conv2d) ghostSq(sc *convScratch, col []float32, ld int, g []float32, ldg, kt int) float64 {
	p, d := c.Cout, c.d()
	sc.gramA = tensor.EnsureSlice(sc.gramA, kt*kt)
	sc.gramG = tensor.EnsureSlice(sc.gramG, kt*kt)
	tensor.SgemmSerial(true, false, kt, kt, d, 1, col, ld, col, ld, 0, sc.gramA, kt)
	tensor.SgemmSerial(true, false, kt, kt, p, 1, g, ldg, g, ldg, 0, sc.gramG, kt)
	var s float64
	for q, v := range sc.gramA {
		s += float64(v) * float64(sc.gramG[q])
	}
	return s
}

// wsGhostCorrection returns Σ_o ((Σg_o)²/n + (2/n − ‖ŵ_o‖²/n²)(g_o·ŵ_o)²)/s_o²
// for example j (see the type comment); col is the example's d×kt patch
// block with stride ld.
func (c *Conv2d) wsGhostCorrection(sc *convScratch, col []float32, ld int, dy []float32, j, k, t int) float64 {
	p, d := c.Cout, c.d()
	n := float64(d)
	kt := k * t
	if cap(sc.colsum) < kt {
		sc.colsum = make([]float64, kt)
	}
	colsum := sc.colsum[:kt]
	clear(colsum)
	for r := 0; r < d; r++ {
		for q, v := range col[r*ld : r*ld+kt] {
			colsum[q] += float64(v)
		}
	}
	var corr float64
	for o := 0; o < p; o++ {
		var sg, gw float64
		var bias float64
		if c.B != nil {
			bias = float64(c.B.Value[o])
		}
		for a := 0; a < k; a++ {
			r := j*k + a
			dyo := dy[(r*p+o)*t : (r*p+o+1)*t]
			z := c.y.Data[(r*p+o)*t : (r*p+o+1)*t]
			for q, v := range dyo {
				sg += float64(v) * colsum[a*t+q]
				gw += float64(v) * (float64(z[q]) - bias)
			}
		}
		var wn float64
		for _, v := range c.wEff[o*d : (o+1)*d] {
			wn += float64(v) * float64(v)
		}
		inv := float64(c.wsInvStd[o])
		corr += (sg*sg/n + (2/n-wn/(n*n))*gw*gw) * inv * inv
	}
	return corr
}

// AccumulateClipped adds Σ_j coef[j]·∇θ ℓ_j to the gradients.
func (c *Conv2d) AccumulateClipped(coef []float32) {
	p, d := c.Cout, c.d()
	m := len(coef)
	if c.B != nil && !c.B.Frozen {
		for j := 0; j < m; j++ {
			for o, v := range c.bgrad[j*p : (j+1)*p] {
				c.B.Grad[o] += coef[j] * v
			}
		}
	}
	if c.W.Frozen {
		return
	}
	if c.method == "materialize-stored" {
		g := c.W.Grad
		tensor.ParallelFor(p*d, 4096, func(lo, hi int) {
			for j := 0; j < m; j++ {
				cj := coef[j]
				if cj == 0 {
					continue
				}
				src := c.stored[j*p*d : (j+1)*p*d]
				for q := lo; q < hi; q++ {
					g[q] += cj * src[q]
				}
			}
		})
		return
	}
	b := c.x.Shape[0]
	k := c.group
	t := c.dy.Shape[2] * c.dy.Shape[3]
	cs := chunkSize(b, t, 1)
	nch := (b + cs - 1) / cs
	c.ensureWorkers(nch)
	nw := tensor.Workers(nch)
	for wk := 0; wk < nw; wk++ {
		sc := &c.scratch[wk]
		sc.acc = tensor.EnsureSlice(sc.acc, p*d)
		clear(sc.acc)
	}
	scale := func(r int) float32 { return coef[r/k] }
	tensor.ParallelEach(nch, func(wk, ch int) {
		sc := &c.scratch[wk]
		r0 := ch * cs
		n := min(cs, b-r0)
		dyc, ldy := c.gatherDY(&sc.dyc, c.dy.Data, r0, n, t, scale)
		col, ld := c.cols(sc, r0, n, t)
		tensor.SgemmSerial(false, true, p, d, ld, 1, dyc, ldy, col, ld, 1, sc.acc, d)
	})
	acc := c.scratch[0].acc
	for wk := 1; wk < nw; wk++ {
		for q, v := range c.scratch[wk].acc {
			acc[q] += v
		}
	}
	if c.WS {
		c.wsBackward(c.W.Grad, acc, true)
	} else {
		for q, v := range acc {
			c.W.Grad[q] += v
		}
	}
}
