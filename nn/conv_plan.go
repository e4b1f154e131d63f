package nn

import (
	"dptrain/internal/par"
	"dptrain/tensor"
)

// Convolution kernels (tensor.ConvPlan: oneDNN when compiled in). When a
// layer has plans, its forward and backward-data products, its batch
// weight gradient (non-private ∇W, and the clipped sum Σ_j c_j·∇W_j of the
// ghost and materialise rules) and the stored rule's per-example gradients
// run on them instead of on im2col and GEMM; the ghost and materialise
// norms keep im2col and GEMM (they need the patch matrices). Calls are cut
// by the problem size alone (planChunk, weightTasks), each runs on one
// thread, and weight-gradient slots are added in slot order, so results do
// not depend on the thread count; they differ from the im2col path's by
// rounding only (TestConvKernelsMatchIm2col).

// maxPlans bounds the plans a layer keeps (one per call shape: batch sizes
// vary under Poisson sampling, and with them the last chunk's and the
// weight-gradient slots' row counts). Past it the layer's plans are dropped
// and made again as needed; oneDNN's own primitive cache keeps the compiled
// kernels, so a remade plan costs a descriptor, not a JIT compilation.
const maxPlans = 96

// hasPlans reports whether the layer runs on plans (its last forward did).
func (c *Conv2d) hasPlans() bool { return !c.noPlans && len(c.plans) > 0 }

// planShape is the call shape of n rows of the current input computing
// cout output channels of an output with ct channels per row (ct ≤ cout:
// the plan's own output, compact), with the products in wino allowed to
// use Winograd (winograd).
func (c *Conv2d) planShape(n, cout, ct int, wino tensor.WinogradOps) tensor.ConvShape {
	s := tensor.ConvShape{N: n, Cin: c.Cin, H: c.x.Shape[2], W: c.x.Shape[3], Cout: cout, K: c.K, Stride: c.Stride, Pad: c.Pad, Winograd: wino}
	if ct > cout {
		s.CoutTotal = ct
	}
	return s
}

// winograd returns the products the layer's plans may compute by Winograd
// (tensor.WinogradOps; the plan's shape rule decides where it does):
//
//   - not the forward product under weight standardisation, whose ghost
//     correction bounds the forward output's rounding by the γ_d of a
//     direct d-term sum (conv_ws.go);
//   - not the clipped sum Σ_j c_j·∇W_j of the ghost and materialise rules
//     (clippedSum), the one product whose result is released without
//     passing through a norm of the same array: its rounding is left as the
//     direct kernel's (report.md). The stored rule's ∇W_j may use it: the
//     norm is taken of the array that is then summed.
func (c *Conv2d) winograd(clippedSum bool) tensor.WinogradOps {
	switch {
	case clippedSum:
		return 0
	case c.WS:
		return tensor.WinogradBackwardData | tensor.WinogradBackwardWeights
	}
	return tensor.WinogradAll
}

// makePlan returns the layer's plan of shape s, made and kept when new, or
// nil when there are no kernels (pure-Go build, DPTRAIN_CONV=im2col) or
// they cannot run s. Not safe for concurrent use: every plan a parallel
// section needs is made before it starts.
func (c *Conv2d) makePlan(s tensor.ConvShape) *tensor.ConvPlan {
	if p, ok := c.plans[s]; ok {
		return p
	}
	p, err := tensor.NewConvPlan(s)
	if p == nil || err != nil {
		return nil
	}
	if c.plans == nil {
		c.plans = make(map[tensor.ConvShape]*tensor.ConvPlan)
	}
	c.plans[s] = p
	return p
}

// planFor returns the plan of n rows (all output channels), or nil when
// the layer runs without plans; a refused shape makes the layer use im2col
// and GEMM from now on.
func (c *Conv2d) planFor(n int) *tensor.ConvPlan {
	if c.noPlans {
		return nil
	}
	p := c.makePlan(c.planShape(n, c.Cout, 0, c.winograd(false)))
	if p == nil {
		c.noPlans = true
	}
	return p
}

// planChunk returns the rows of one forward or backward-data call on plans
// over b rows of t positions: the batch in up to tensor.MaxSlots calls (more
// rows per call amortise the layout reorders and the call itself), at most
// planCallCols columns each. It depends only on the problem size.
func planChunk(b, t int) int {
	return max(1, min((b+tensor.MaxSlots-1)/tensor.MaxSlots, planCallCols/t))
}

const planCallCols = 16384

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
	return c.plans[c.planShape(n, c.Cout, 0, c.winograd(false))]
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

// Weight-gradient tasks of accumulatePlanned. Each slot's partial ∇Ŵ
// (Cout·Cin·K·K floats) costs a write and a read in the reduction, so a slot
// gets at least planSlotCols columns (rows × positions) of work; when that
// leaves fewer slots than tensor.MaxSlots, the output channels are cut into
// blocks of at least planBlockChannels, each block's rows of ∇Ŵ computed by
// its own task (disjoint rows: nothing to reduce). Both counts depend only
// on the problem size.
const (
	planSlotCols      = 2048
	planBlockChannels = 64
)

// weightTasks returns the slots and channel blocks of a weight gradient over
// nr rows of t positions with p output channels.
func weightTasks(nr, t, p int) (slots, blocks int) {
	slots = tensor.Slots(max(1, min(nr, nr*t/planSlotCols)))
	blocks = max(1, min(tensor.MaxSlots/slots, p/planBlockChannels))
	return slots, blocks
}

// planRows returns the plan of n rows and the output channels [o0, o1), for
// output gradients with ct channels per row (ct = Cout: a view of dy; ct =
// o1 − o0: a compact copy), made before the parallel section; clipped: for
// the clipped sum (winograd).
func (c *Conv2d) planRows(n, o0, o1, ct int, clipped bool) *tensor.ConvPlan {
	return c.plans[c.planShape(n, o1-o0, ct, c.winograd(clipped))]
}

// accumulatePlanned is accumulate on plans, over the batch rows rows
// (output gradients scaled by coef[r/k] when coef is not nil): the rows are
// cut into the fixed slots of tensor.SlotRange and the output channels into
// blocks (weightTasks); each (slot, block) task is one backward-weights call
// over its rows, which writes its block's rows of the slot's ∇Ŵ, with the
// block's bias sums beside it; the slots are added in slot order. Which
// goroutine runs a task does not matter.
//
// It reports false, having done nothing, when the kernels refuse one of the
// shapes (the layer then runs on im2col and GEMM from now on).
func (c *Conv2d) accumulatePlanned(rows []int, withBias bool, t int, dy []float32, coef []float32, k int) bool {
	p, d := c.Cout, c.d()
	plane := c.Cin * c.x.Shape[2] * c.x.Shape[3]
	wTrain := !c.W.Frozen
	bTrain := withBias && c.B != nil && !c.B.Frozen
	nr := len(rows)
	ns, nb := weightTasks(nr, t, p)
	// A slot's output gradients are a view of dy when its rows are
	// consecutive and unscaled, else a compact copy of the block.
	view := func(rs []int) bool { return coef == nil && rs[len(rs)-1]-rs[0] == len(rs)-1 }
	for s := 0; s < ns && wTrain; s++ {
		lo, hi := tensor.SlotRange(nr, ns, s)
		for b := 0; b < nb; b++ {
			o0, o1 := tensor.SlotRange(p, nb, b)
			ct := o1 - o0
			if view(rows[lo:hi]) {
				ct = p
			}
			if c.makePlan(c.planShape(hi-lo, o1-o0, ct, c.winograd(coef != nil))) == nil {
				c.noPlans = true // the caller falls back to im2col and GEMM
				return false
			}
		}
	}
	nw := par.Workers(ns * nb)
	c.ensureWorkers(nw)
	acc := tensor.AcquireSlots(ns, p*d+p)
	defer acc.Release()
	par.EachN(ns*nb, nw, func(wk, task int) {
		sc := &c.scratch[wk]
		s, b := task/nb, task%nb
		a := acc.Slot(s)
		lo, hi := tensor.SlotRange(nr, ns, s)
		o0, o1 := tensor.SlotRange(p, nb, b)
		rs := rows[lo:hi]
		n, pb := len(rs), o1-o0
		var dyc []float32
		ct := p
		if view(rs) {
			dyc = dy[(rs[0]*p+o0)*t : ((rs[n-1]*p)+o1)*t]
		} else {
			ct = pb
			sc.dyc = tensor.EnsureSlice(sc.dyc, n*pb*t)
			dyc = sc.dyc[:n*pb*t]
			for a, r := range rs {
				src := dy[(r*p+o0)*t : (r*p+o1)*t]
				dst := dyc[a*pb*t : (a+1)*pb*t]
				f := float32(1)
				if coef != nil {
					f = coef[r/k]
				}
				if f == 1 {
					copy(dst, src)
					continue
				}
				for i, v := range src {
					dst[i] = v * f
				}
			}
		}
		if wTrain {
			c.planRows(n, o0, o1, ct, coef != nil).BackwardWeights(a[o0*d:o1*d], rowsNCHW(&sc.col, c.x.Data, rs, plane, nil, 1), dyc)
		}
		if bTrain {
			ab := a[p*d:]
			for o := o0; o < o1; o++ {
				var sum float32
				for r := 0; r < n; r++ {
					off := (r*ct + o - o0) * t
					for _, v := range dyc[off : off+t] {
						sum += v
					}
				}
				ab[o] = sum
			}
		}
	})
	c.addAccumulated(acc.Reduce(), wTrain, bTrain)
	return true
}
