package nn

import (
	"fmt"
	"math/rand/v2"

	"dptrain/internal/par"
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
// by cost (mixed ghost clipping, Bu et al. 2022; the choice and its cost
// model are in conv_rule.go, the rules in conv_norms.go and conv_gram.go):
//
//   - RuleMaterializeStored: ∇Ŵ_i = dy_i·col_iᵀ is formed in float32 and kept
//     when B·|W| fits the materialise budget; the clipped sum is then a
//     weighted sum of the kept gradients, so (without WS) the norm is exact
//     for what is released. Chosen for small early layers with many
//     positions per example, where recomputing costs more than the memory
//     traffic of keeping (normCosts). Under WS the kept ∇Ŵ_i's norm is
//     taken through the WS Jacobian by the row formula below (storedWSSq)
//     and the weighted sum goes through the Jacobian once.
//   - RuleGhost: ‖∇Ŵ_i‖² = ⟨col_iᵀcol_i, dy_iᵀdy_i⟩ from two T×T Gram
//     matrices (float64), O(T²(d+Cout)); the clipped sum is one more pass of
//     weighted GEMMs. Chosen when T is small (late layers).
//   - RuleMaterialize: ∇W_i formed (float64) to take its norm and dropped; the
//     clipped sum recomputes it with the clip factor. Chosen when T is large
//     but storage is not allowed.
//
// Every rule reports an upper bound of the exact squared norm (normbound.go):
// never a rounded-down norm.
//
// Weight standardisation (conv_ws.go) is linear in ∇Ŵ given W:
// ∇W = J_ws(∇Ŵ), applied row by row. The ghost rule stays exact under WS: for row o with n = d,
// ‖∇w_o‖² = (‖g_o‖² − (Σg_o)²/n − (2/n − ‖ŵ_o‖²/n²)(g_o·ŵ_o)²
// + 2(Σg_o)(g_o·ŵ_o)(Σŵ_o)/n²)/s_o², where g_o = ∇ŵ_o, Σg_o = Σ_t
// dy[o,t]·colsum[t] and g_o·ŵ_o = Σ_t dy[o,t]·z[o,t] with z the pre-bias
// output; ‖g_o‖²/s_o² is the ghost norm of dy scaled by 1/s_o.
//
// Determinism: the batch is cut into chunks whose size depends only on the
// batch and image sizes (chunkSize); gradient sums over chunks go through
// fixed reduction slots (tensor.Slots), so Forward, Backward, the per-example
// norms and AccumulateClipped give the same bits on every run and at every
// thread count.
//
// AccumulateClipped leaves out every example whose coefficient is 0
// entirely: its rows of dy and of the patch matrix enter no product, so an
// example with a non-finite gradient (given c = 0 by the clipping) cannot
// turn the sum into NaN (0·Inf), and the result is that of the batch
// without it.
type Conv2d struct {
	Cin, Cout, K, Stride, Pad int
	WS                        bool
	W, B                      *Param // B may be nil

	// ForceNorm, when not RuleAuto, forces the per-example norm rule (for
	// tests and benchmarks): RuleGhost, RuleMaterialize or
	// RuleMaterializeStored.
	ForceNorm NormRule

	x, y, dx, dy *tensor.Tensor
	ownDX        *tensor.Tensor // dx's buffer without an arena (BackwardContext.Grad)
	wEff         []float32      // Ŵ (alias of W.Value without WS)
	wsInvStd     []float32      // 1/s_o
	wsRow        []wsRowStats
	wsZScale     []float64     // γ³²_d·‖ŵ_o‖: the forward GEMM's error per unit ‖a_s‖ (wsCorrection)
	scratch      []convScratch // one per worker
	rule         NormRule      // of the last PerExample backward
	group        int
	stored       []float32                  // materialize-stored: m × storedLen (storedLen: Cout·d, or the blocked layout's Len)
	storedPlan   storedKernel               // non-nil: stored arrays in this kernel's layout (storedBlk)
	storedBlk    tensor.BlockedLayout       // the layout of storedPlan's weight gradients
	wsBlk        []float32                  // Ŵ in storedBlk's layout (WS with storedPlan)
	wino2        *tensor.WinogradWeightGrad // the stored rule's F(2×2, 3×3) kernel of the last shape (storedKernelFor)
	bgrad        []float32                  // per-example bias gradients: m × Cout
	sq           []float64
	rows         []int // batch rows of the chunks (identity, or the active rows)
	pix          pixelMap

	cw      tensor.ConvWeights                    // Ŵ for the plans
	plans   map[tensor.ConvShape]*tensor.ConvPlan // conv_plan.go
	noPlans bool                                  // no kernels: im2col and GEMM
}

// convScratch is one worker's scratch space. Every item a worker takes
// overwrites what it uses, so results never depend on which worker ran
// which chunk.
type convScratch struct {
	col, dyc, yc, dcol []float32 // chunk matrices: d×nT, p×nT, p×nT, d×nT
	col1               []float32 // one example's patches (d×kT)
	x32                []float32 // one example's k input rows side by side (Cin × k·H·W)
	a64, g64, gw64     []float64 // float64 norm work: patches, output gradients, ∇Ŵ_j
	gramA, gramG, pgr  []float64 // kT×kT Grams; the pixel Gram
	colsum, colabs     []float64 // per column: Σ_r a_rs, Σ_r |a_rs|
	vec                []float64 // gramInner's scratch (2·kT)
	wsSums             []tensor.WSGhostSums
	wsStats            []tensor.WSStats
}

// Chunks: a chunk is a run of consecutive batch rows (examples, or
// augmented copies) processed by one GEMM of p × (rows·T) × d, so that late
// layers with few positions per example batch several examples into one
// product instead of many skinny ones.
const (
	chunkCols = 512 // target columns (rows × positions) of a chunk
	minCols   = 128 // a chunk is cut smaller only down to this many columns
	minChunks = 16  // … to give up to this many goroutines work
)

// chunkSize returns how many batch rows one chunk holds: about chunkCols
// columns, fewer (down to minCols) when that yields at least minChunks
// chunks, and a multiple of the example group k. It depends only on the
// problem size, never on the thread count: the chunks fix the GEMM shapes
// and the summation order, so the results are the same bits at any thread
// count.
func chunkSize(b, t, k int) int {
	cs := (chunkCols + t - 1) / t
	cs = min(cs, max((b+minChunks-1)/minChunks, (minCols+t-1)/t))
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

func (c *Conv2d) Trainable() bool      { return trainable(c) }
func (c *Conv2d) NormMethod() NormRule { return c.rule }

func (c *Conv2d) d() int { return c.Cin * c.K * c.K }

func (c *Conv2d) direct() bool { return c.K == 1 && c.Stride == 1 && c.Pad == 0 }

func (c *Conv2d) outHW(h, w int) (int, int) {
	return tensor.ConvOut(h, c.K, c.Stride, c.Pad), tensor.ConvOut(w, c.K, c.Stride, c.Pad)
}

func (c *Conv2d) ensureWorkers(n int) {
	for len(c.scratch) < n {
		c.scratch = append(c.scratch, convScratch{})
	}
}

// identityRows returns the batch rows [0, b) as a slice (the rows of the
// chunks when every row takes part).
func (c *Conv2d) identityRows(b int) []int {
	if cap(c.rows) < b {
		c.rows = make([]int, b)
	}
	c.rows = c.rows[:b]
	for i := range c.rows {
		c.rows[i] = i
	}
	return c.rows
}

// cols returns the patch matrix of the given batch rows: d × n·T with row
// stride ld = n·T, row a of the list in columns [a·T, (a+1)·T). A single row
// of a 1×1, stride-1, unpadded convolution is x itself (no copy).
func (c *Conv2d) cols(buf *[]float32, rows []int, t int) ([]float32, int) {
	h, w := c.x.Shape[2], c.x.Shape[3]
	d := c.d()
	plane := c.Cin * h * w
	n := len(rows)
	if c.direct() && n == 1 {
		return c.x.Data[rows[0]*plane : (rows[0]+1)*plane], t
	}
	ld := n * t
	*buf = tensor.EnsureSlice(*buf, d*ld)
	col := *buf
	for a, r := range rows {
		xi := c.x.Data[r*plane : (r+1)*plane]
		if c.direct() {
			for q := 0; q < d; q++ {
				copy(col[q*ld+a*t:q*ld+(a+1)*t], xi[q*t:(q+1)*t])
			}
			continue
		}
		tensor.Im2colStrided(col[a*t:], ld, xi, c.Cin, h, w, c.K, c.K, c.Stride, c.Pad)
	}
	return col, ld
}

// gatherDY returns the output gradients of the given batch rows as a
// p × n·T matrix (row stride ld). With coef, row r is scaled by coef[r/k]
// (AccumulateClipped); rows with coefficient 0 are never passed here.
func (c *Conv2d) gatherDY(buf *[]float32, dy []float32, rows []int, t int, coef []float32, k int) ([]float32, int) {
	p := c.Cout
	n := len(rows)
	if n == 1 && coef == nil {
		return dy[rows[0]*p*t : (rows[0]+1)*p*t], t
	}
	ld := n * t
	*buf = tensor.EnsureSlice(*buf, p*ld)
	out := *buf
	for a, r := range rows {
		src := dy[r*p*t : (r+1)*p*t]
		s := float32(1)
		if coef != nil {
			s = coef[r/k]
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
	if pcs := planChunk(b, t); c.plansFor(b, pcs) {
		c.forwardPlanned(b, pcs, t)
		return c.y
	}
	rows := c.identityRows(b)
	nw := par.Workers(nch)
	c.ensureWorkers(nw)
	par.EachN(nch, nw, func(wk, ch int) {
		sc := &c.scratch[wk]
		r0 := ch * cs
		n := min(cs, b-r0)
		col, ld := c.cols(&sc.col, rows[r0:r0+n], t)
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

func (c *Conv2d) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	b, h, w := c.x.Shape[0], c.x.Shape[2], c.x.Shape[3]
	oh, ow := c.outHW(h, w)
	if len(dy.Shape) != 4 || dy.Shape[0] != b || dy.Shape[1] != c.Cout || dy.Shape[2] != oh || dy.Shape[3] != ow {
		shapePanic("Conv2d.Backward", "dy %v, want [%d %d %d %d]", dy.Shape, b, c.Cout, oh, ow)
	}
	t := oh * ow
	train := c.Trainable()
	needDX := ctx.NeedDX
	if needDX {
		c.dx = ctx.Grad(&c.ownDX, c.x.Shape...)
	}
	k := 1
	if train && ctx.Mode == PerExample {
		k = ctx.GroupSize()
		if b%k != 0 {
			shapePanic("Conv2d.Backward", "batch %d not a multiple of group %d", b, k)
		}
	}
	cs := chunkSize(b, t, k)
	nch := (b + cs - 1) / cs
	rows := c.identityRows(b)
	chunk := func(ch int) []int { return rows[ch*cs : min((ch+1)*cs, b)] }
	pcs := planChunk(b, t)
	planned := c.plansFor(b, pcs)
	if planned && needDX {
		pch := (b + pcs - 1) / pcs
		par.EachN(pch, par.Workers(pch), func(_, ch int) {
			r0 := ch * pcs
			c.backwardDXPlanned(dy.Data, r0, min(pcs, b-r0), t)
		})
	}
	switch {
	case !train && planned:
	case ctx.Mode == Accumulate && planned && c.accumulatePlanned(rows, true, t, dy.Data, nil, 1):
	case !train:
		nw := par.Workers(nch)
		c.ensureWorkers(nw)
		par.EachN(nch, nw, func(wk, ch int) {
			c.chunkDY(&c.scratch[wk], chunk(ch), t, h, w, dy, nil, 1, needDX)
		})
	case ctx.Mode == Accumulate:
		c.accumulate(nch, true, chunk, t, func(sc *convScratch, rows []int) ([]float32, int) {
			return c.chunkDY(sc, rows, t, h, w, dy, nil, 1, needDX && !planned)
		})
	default:
		// With plans, the input gradients were computed above.
		c.backwardPerExample(dy, ctx, k, t, nch, chunk, h, w, needDX && !planned)
	}
	if needDX {
		return c.dx
	}
	return nil
}

// chunkDY starts the backward work of one chunk (the given batch rows): it
// gathers the chunk's output gradients (scaled by coef[r/k] when coef is not
// nil) and computes its input gradients when needDX.
func (c *Conv2d) chunkDY(sc *convScratch, rows []int, t, h, w int, dy *tensor.Tensor, coef []float32, k int, needDX bool) ([]float32, int) {
	dyc, ldy := c.gatherDY(&sc.dyc, dy.Data, rows, t, coef, k)
	if needDX {
		c.backwardDX(sc, dyc, ldy, rows[0], len(rows), h, w)
	}
	return dyc, ldy
}

// backwardDX computes the input gradients of the consecutive rows
// [r0, r0+n) from their output gradients dyc (p × n·T, stride ldy):
// dcol = Ŵᵀ·dyc, then col2im.
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

// accumulate adds Σ_chunks dyc·colᵀ to ∇W (through the WS Jacobian) and,
// withBias, the row sums of dyc to ∇b, for nch chunks whose rows chunk(ch) returns and
// whose (already scaled) output gradients gather returns.
//
// The sum is deterministic: chunk ch belongs to the fixed slot of
// tensor.SlotRange, each slot sums its chunks in order into its own
// accumulator (the first chunk overwrites it: beta = 0), and the slots are
// added in slot order. The goroutine that runs a slot does not matter.
func (c *Conv2d) accumulate(nch int, withBias bool, chunk func(ch int) []int, t int, gather func(sc *convScratch, rows []int) ([]float32, int)) {
	p, d := c.Cout, c.d()
	wTrain := !c.W.Frozen
	bTrain := withBias && c.B != nil && !c.B.Frozen
	ns := tensor.Slots(nch)
	nw := par.Workers(ns)
	c.ensureWorkers(nw)
	acc := tensor.AcquireSlots(ns, p*d+p)
	defer acc.Release()
	par.EachN(ns, nw, func(wk, s int) {
		sc := &c.scratch[wk]
		a := acc.Slot(s)
		aw, ab := a[:p*d], a[p*d:]
		lo, hi := tensor.SlotRange(nch, ns, s)
		for ch := lo; ch < hi; ch++ {
			rows := chunk(ch)
			dyc, ldy := gather(sc, rows)
			beta := float32(1)
			if ch == lo {
				beta = 0
			}
			if wTrain {
				col, ld := c.cols(&sc.col, rows, t)
				tensor.SgemmSerial(false, true, p, d, ld, 1, dyc, ldy, col, ld, beta, aw, d)
			}
			if bTrain {
				for o := 0; o < p; o++ {
					var sum float32
					for _, v := range dyc[o*ldy : o*ldy+ldy] {
						sum += v
					}
					if ch == lo {
						ab[o] = sum
					} else {
						ab[o] += sum
					}
				}
			}
		}
	})
	c.addAccumulated(acc.Reduce(), wTrain, bTrain)
}

// addAccumulated adds the reduced slots (∇Ŵ then ∇b) to the gradients,
// ∇Ŵ through the WS Jacobian.
func (c *Conv2d) addAccumulated(total []float32, wTrain, bTrain bool) {
	p, d := c.Cout, c.d()
	if wTrain {
		if c.WS {
			c.wsBackward(c.W.Grad, total[:p*d], true)
		} else {
			addInPlace(c.W.Grad, total[:p*d])
		}
	}
	if bTrain {
		addInPlace(c.B.Grad, total[p*d:])
	}
}

// addInPlace sets dst[i] += src[i] (in parallel; elementwise).
func addInPlace(dst, src []float32) {
	par.For(len(dst), 1<<14, func(lo, hi int) {
		d := dst[lo:hi]
		for i, v := range src[lo:hi] {
			d[i] += v
		}
	})
}
