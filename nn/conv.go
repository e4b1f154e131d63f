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
//     sum of the kept gradients. Chosen for small early layers.
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
	col, dcol, acc, gw, gramA, gramG, dys []float32
	accB                                  []float32
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

// colOf returns the d×T patch matrix of example i (in scratch buf unless the
// convolution is 1×1 with stride 1 and no padding, where it is x_i itself).
func (c *Conv2d) colOf(buf []float32, i int) []float32 {
	h, w := c.x.Shape[2], c.x.Shape[3]
	xi := c.x.Data[i*c.Cin*h*w : (i+1)*c.Cin*h*w]
	if c.direct() {
		return xi
	}
	Im2colInto(buf, xi, c.Cin, h, w, c.K, c.Stride, c.Pad)
	return buf
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
	d, t := c.d(), oh*ow
	c.ensureWorkers(b)
	tensor.ParallelEach(b, func(wk, i int) {
		sc := &c.scratch[wk]
		if !c.direct() {
			sc.col = tensor.EnsureSlice(sc.col, d*t)
		}
		col := c.colOf(sc.col, i)
		yi := c.y.Data[i*c.Cout*t : (i+1)*c.Cout*t]
		tensor.SgemmSerial(false, false, c.Cout, t, d, 1, c.wEff, d, col, t, 0, yi, t)
		if c.B != nil {
			for o, bv := range c.B.Value {
				row := yi[o*t : (o+1)*t]
				for j := range row {
					row[j] += bv
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
	c.ensureWorkers(b)
	if !train || ctx.Mode == Accumulate {
		nw := tensor.Workers(b)
		if train {
			for wk := 0; wk < nw; wk++ {
				sc := &c.scratch[wk]
				sc.acc = tensor.EnsureSlice(sc.acc, p*d)
				clear(sc.acc)
				sc.accB = tensor.EnsureSlice(sc.accB, p)
				clear(sc.accB)
			}
		}
		tensor.ParallelEach(b, func(wk, i int) {
			sc := &c.scratch[wk]
			dyi := dy.Data[i*p*t : (i+1)*p*t]
			if needDX {
				c.backwardDX(sc, dyi, i, h, w)
			}
			if train {
				if !c.direct() {
					sc.col = tensor.EnsureSlice(sc.col, d*t)
				}
				col := c.colOf(sc.col, i)
				tensor.SgemmSerial(false, true, p, d, t, 1, dyi, t, col, t, 1, sc.acc, d)
				for o := 0; o < p; o++ {
					var s float32
					for _, v := range dyi[o*t : (o+1)*t] {
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
	k := ctx.group()
	if b%k != 0 {
		shapePanic("Conv2d.Backward", "batch %d not a multiple of group %d", b, k)
	}
	m := b / k
	c.dy, c.group = dy, k
	c.method = c.chooseMethod(m, k, t, ctx.MaterializeBudget)
	wTrain := !c.W.Frozen
	c.sq = growF64(c.sq, m)
	c.bgrad = tensor.EnsureSlice(c.bgrad, m*p)
	if c.method == "materialize-stored" && wTrain {
		c.stored = tensor.EnsureSlice(c.stored, m*p*d)
	}
	tensor.ParallelEach(m, func(wk, j int) {
		sc := &c.scratch[wk]
		if needDX {
			for r := j * k; r < (j+1)*k; r++ {
				c.backwardDX(sc, dy.Data[r*p*t:(r+1)*p*t], r, h, w)
			}
		}
		// bias gradient of the example: Σ over its rows and positions.
		bg := c.bgrad[j*p : (j+1)*p]
		clear(bg)
		for r := j * k; r < (j+1)*k; r++ {
			dyr := dy.Data[r*p*t : (r+1)*p*t]
			for o := 0; o < p; o++ {
				var s float32
				for _, v := range dyr[o*t : (o+1)*t] {
					s += v
				}
				bg[o] += s
			}
		}
		var sq float64
		if c.B != nil && !c.B.Frozen {
			for _, v := range bg {
				sq += float64(v) * float64(v)
			}
		}
		if wTrain {
			if c.method == "ghost" {
				sq += c.ghostSq(sc, dy.Data, j, k, d, t)
			} else {
				sq += c.materializeSq(sc, dy.Data, j, k, d, t)
			}
		}
		c.sq[j] = sq
	})
	ctx.register(c, c.sq)
	if needDX {
		return c.dx
	}
	return nil
}

func (c *Conv2d) backwardDX(sc *convScratch, dyi []float32, i, h, w int) {
	d, p := c.d(), c.Cout
	t := len(dyi) / p
	dxi := c.dx.Data[i*c.Cin*h*w : (i+1)*c.Cin*h*w]
	if c.direct() {
		tensor.SgemmSerial(true, false, d, t, p, 1, c.wEff, d, dyi, t, 0, dxi, t)
		return
	}
	sc.dcol = tensor.EnsureSlice(sc.dcol, d*t)
	tensor.SgemmSerial(true, false, d, t, p, 1, c.wEff, d, dyi, t, 0, sc.dcol, t)
	clear(dxi)
	tensor.Col2im(dxi, sc.dcol, c.Cin, h, w, c.K, c.K, c.Stride, c.Pad)
}

// reduceInto sums the workers' accumulators and adds them (through the WS
// Jacobian when enabled) to the parameter gradients.
func (c *Conv2d) reduceInto(nw, d int) {
	acc := c.scratch[0].acc
	for wk := 1; wk < nw; wk++ {
		for j, v := range c.scratch[wk].acc {
			acc[j] += v
		}
		for j, v := range c.scratch[wk].accB {
			c.scratch[0].accB[j] += v
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
	if c.B != nil && !c.B.Frozen {
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
	p, d := c.Cout, c.d()
	if m*p*d <= budget {
		return "materialize-stored"
	}
	kt := float64(k * t)
	ghost := kt * kt * float64(d+p)
	mat := kt * float64(d) * float64(p)
	if ghost < mat && kt*kt <= 1<<22 {
		return "ghost"
	}
	return "materialize"
}

// materializeSq forms ∇W_j (through WS when enabled), returns its squared
// norm, and keeps it when the method is materialize-stored.
func (c *Conv2d) materializeSq(sc *convScratch, dy []float32, j, k, d, t int) float64 {
	p := c.Cout
	sc.gw = tensor.EnsureSlice(sc.gw, p*d)
	if !c.direct() {
		sc.col = tensor.EnsureSlice(sc.col, d*t)
	}
	for r := j * k; r < (j+1)*k; r++ {
		col := c.colOf(sc.col, r)
		beta := float32(1)
		if r == j*k {
			beta = 0
		}
		tensor.SgemmSerial(false, true, p, d, t, 1, dy[r*p*t:(r+1)*p*t], t, col, t, beta, sc.gw, d)
	}
	g := sc.gw
	if c.WS {
		sc.acc = tensor.EnsureSlice(sc.acc, p*d)
		c.wsBackward(sc.acc, sc.gw, false)
		g = sc.acc
	}
	var s float64
	for _, v := range g {
		s += float64(v) * float64(v)
	}
	if c.method == "materialize-stored" {
		copy(c.stored[j*p*d:(j+1)*p*d], g)
	}
	return s
}

// ghostSq returns ‖∇W_j‖² from Gram matrices of the patches and of the
// output gradients over the K·T positions of example j.
func (c *Conv2d) ghostSq(sc *convScratch, dy []float32, j, k, d, t int) float64 {
	p := c.Cout
	kt := k * t
	sc.gramA = tensor.EnsureSlice(sc.gramA, kt*kt)
	sc.gramG = tensor.EnsureSlice(sc.gramG, kt*kt)
	cols := make([][]float32, k) // k small; the slices alias scratch
	if !c.direct() {
		sc.col = tensor.EnsureSlice(sc.col, k*d*t)
	}
	for a := 0; a < k; a++ {
		var buf []float32
		if !c.direct() {
			buf = sc.col[a*d*t : (a+1)*d*t]
		}
		cols[a] = c.colOf(buf, j*k+a)
	}
	// dy rows, scaled by 1/s_o under WS.
	dys := make([][]float32, k)
	if c.WS {
		sc.dys = tensor.EnsureSlice(sc.dys, k*p*t)
	}
	for a := 0; a < k; a++ {
		src := dy[(j*k+a)*p*t : (j*k+a+1)*p*t]
		if !c.WS {
			dys[a] = src
			continue
		}
		dst := sc.dys[a*p*t : (a+1)*p*t]
		for o := 0; o < p; o++ {
			s := c.wsInvStd[o]
			for q, v := range src[o*t : (o+1)*t] {
				dst[o*t+q] = v * s
			}
		}
		dys[a] = dst
	}
	for a := 0; a < k; a++ {
		for b := 0; b < k; b++ {
			tensor.SgemmSerial(true, false, t, t, d, 1, cols[a], t, cols[b], t, 0, sc.gramA[a*t*kt+b*t:], kt)
			tensor.SgemmSerial(true, false, t, t, p, 1, dys[a], t, dys[b], t, 0, sc.gramG[a*t*kt+b*t:], kt)
		}
	}
	var s float64
	for q, v := range sc.gramA {
		s += float64(v) * float64(sc.gramG[q])
	}
	if c.WS {
		s -= c.wsGhostCorrection(cols, dy, j, k, d, t)
	}
	return s
}

// wsGhostCorrection returns Σ_o ((Σg_o)²/n + (2/n − ‖ŵ_o‖²/n²)(g_o·ŵ_o)²)/s_o²
// for example j (see the type comment).
func (c *Conv2d) wsGhostCorrection(cols [][]float32, dy []float32, j, k, d, t int) float64 {
	p := c.Cout
	n := float64(d)
	var corr float64
	colsum := make([]float64, k*t)
	for a := 0; a < k; a++ {
		for r := 0; r < d; r++ {
			for q, v := range cols[a][r*t : (r+1)*t] {
				colsum[a*t+q] += float64(v)
			}
		}
	}
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
	nw := tensor.Workers(b)
	for wk := 0; wk < nw; wk++ {
		sc := &c.scratch[wk]
		sc.acc = tensor.EnsureSlice(sc.acc, p*d)
		clear(sc.acc)
	}
	tensor.ParallelEach(b, func(wk, i int) {
		cj := coef[i/k]
		if cj == 0 {
			return
		}
		sc := &c.scratch[wk]
		if !c.direct() {
			sc.col = tensor.EnsureSlice(sc.col, d*t)
		}
		col := c.colOf(sc.col, i)
		tensor.SgemmSerial(false, true, p, d, t, cj, c.dy.Data[i*p*t:(i+1)*p*t], t, col, t, 1, sc.acc, d)
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
