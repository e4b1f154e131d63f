package nn

import (
	"dptrain/internal/par"
	"dptrain/tensor"
)

// Convolution kernels (tensor.ConvPlan: oneDNN when compiled in). When a
// layer has plans, its forward, backward-data and batch weight-gradient
// products (the non-private ∇W and the clipped sum Σ_j c_j·∇W_j of the
// ghost and materialise rules) run on them, chunk by chunk, instead of on
// im2col and GEMM; the per-example norm rules keep im2col and GEMM (they
// need the patch matrices). The chunks are the same as without plans, so
// the fixed summation order, and with it the results' independence of the
// thread count, are kept; the bits differ from the im2col path's by
// rounding only (TestConvKernelsMatchIm2col).

// maxPlans bounds the plans a layer keeps (one per chunk shape; batch sizes
// vary under Poisson sampling, so the last chunk's size does).
const maxPlans = 32

// planFor returns the plan of n rows of the current input, or nil when the
// layer runs without plans. Not safe for concurrent use: plansFor makes
// every plan a parallel section needs before it starts.
func (c *Conv2d) planFor(n int) *tensor.ConvPlan {
	if c.noPlans {
		return nil
	}
	s := tensor.ConvShape{N: n, Cin: c.Cin, H: c.x.Shape[2], W: c.x.Shape[3], Cout: c.Cout, K: c.K, Stride: c.Stride, Pad: c.Pad}
	if p, ok := c.plans[s]; ok {
		return p
	}
	p, err := tensor.NewConvPlan(s)
	if p == nil || err != nil {
		// No kernels (pure-Go build, DPTRAIN_CONV=im2col) or a shape they
		// cannot run: this layer uses im2col and GEMM from now on.
		c.noPlans = true
		return nil
	}
	if c.plans == nil {
		c.plans = make(map[tensor.ConvShape]*tensor.ConvPlan)
	}
	c.plans[s] = p
	return p
}

// plansFor makes the plans of a batch of b rows cut into chunks of cs rows
// and reports whether the layer has them.
func (c *Conv2d) plansFor(b, cs int) bool {
	if len(c.plans) > maxPlans {
		c.plans = nil // made again as needed (oneDNN caches its kernels)
	}
	if c.planFor(min(cs, b)) == nil {
		return false
	}
	if r := b % cs; r != 0 && b > cs {
		return c.planFor(r) != nil
	}
	return true
}

// plan returns the plan of n rows made by plansFor (read-only: safe in
// parallel sections).
func (c *Conv2d) plan(n int) *tensor.ConvPlan {
	return c.plans[tensor.ConvShape{N: n, Cin: c.Cin, H: c.x.Shape[2], W: c.x.Shape[3], Cout: c.Cout, K: c.K, Stride: c.Stride, Pad: c.Pad}]
}

// forwardPlanned is Forward on plans: chunk by chunk, y = conv(x, Ŵ) + b.
func (c *Conv2d) forwardPlanned(b, cs, t int) {
	p := c.Cout
	plane := c.Cin * c.x.Shape[2] * c.x.Shape[3]
	c.cw.Set(c.wEff)
	nch := (b + cs - 1) / cs
	par.EachN(nch, par.Workers(nch), func(_, ch int) {
		r0 := ch * cs
		n := min(cs, b-r0)
		yc := c.y.Data[r0*p*t : (r0+n)*p*t]
		c.plan(n).Forward(yc, c.x.Data[r0*plane:(r0+n)*plane], &c.cw)
		if c.B != nil {
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
}

// backwardDXPlanned sets the input gradients of the consecutive rows
// [r0, r0+n) from their output gradients.
func (c *Conv2d) backwardDXPlanned(dy []float32, r0, n, t int) {
	p := c.Cout
	plane := c.Cin * c.x.Shape[2] * c.x.Shape[3]
	c.plan(n).BackwardData(c.dx.Data[r0*plane:(r0+n)*plane], dy[r0*p*t:(r0+n)*p*t], &c.cw)
}

// rowsNCHW returns the given batch rows of src (rows of size plane) as one
// contiguous block: a sub-slice of src when the rows are consecutive (and
// scale is nil), else a copy in buf with row r scaled by scale[r/k].
func rowsNCHW(buf *[]float32, src []float32, rows []int, plane int, scale []float32, k int) []float32 {
	n := len(rows)
	if scale == nil && rows[n-1]-rows[0] == n-1 {
		return src[rows[0]*plane : (rows[n-1]+1)*plane]
	}
	*buf = tensor.EnsureSlice(*buf, n*plane)
	out := *buf
	for a, r := range rows {
		dst, s := out[a*plane:(a+1)*plane], src[r*plane:(r+1)*plane]
		if scale == nil || scale[r/k] == 1 {
			copy(dst, s)
			continue
		}
		f := scale[r/k]
		for i, v := range s {
			dst[i] = v * f
		}
	}
	return out
}

// accumulatePlanned is accumulate on plans: for each chunk (rows chunk(ch),
// output gradients scaled by coef[r/k] when coef is not nil), the chunk's
// ∇Ŵ from the kernels' backward-weights and its bias sums, added in the
// same fixed slots and order as accumulate; with needDX, the chunk's input
// gradients too (rows must then be consecutive).
func (c *Conv2d) accumulatePlanned(nch int, withBias bool, chunk func(ch int) []int, t int, dy []float32, coef []float32, k int, needDX bool) {
	p, d := c.Cout, c.d()
	plane := c.Cin * c.x.Shape[2] * c.x.Shape[3]
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
			n := len(rows)
			if needDX {
				c.backwardDXPlanned(dy, rows[0], n, t)
			}
			dyc := rowsNCHW(&sc.dyc, dy, rows, p*t, coef, k)
			if wTrain {
				xc := rowsNCHW(&sc.col, c.x.Data, rows, plane, nil, 1)
				if ch == lo {
					c.plan(n).BackwardWeights(aw, xc, dyc)
				} else {
					sc.gw = tensor.EnsureSlice(sc.gw, p*d)
					c.plan(n).BackwardWeights(sc.gw, xc, dyc)
					for i, v := range sc.gw[:p*d] {
						aw[i] += v
					}
				}
			}
			if bTrain {
				for o := 0; o < p; o++ {
					var sum float32
					for r := 0; r < n; r++ {
						for _, v := range dyc[(r*p+o)*t : (r*p+o+1)*t] {
							sum += v
						}
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
