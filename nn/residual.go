package nn

import (
	"slices"
	"strconv"
	"strings"

	"dptrain/internal/par"
	"dptrain/tensor"
)

// Residual is a residual block:
//
//	a   = Pre(x)                       (identity when Pre is empty)
//	out = Main(a) + S, S = Shortcut(a or x) (identity when Shortcut is empty)
//	out = relu(out) when PostReLU
//
// ResNet's basic and bottleneck blocks are Pre = ∅, shortcut on x, PostReLU;
// the pre-activation blocks of wide ResNets are Pre = [GN, ReLU], with a
// projection shortcut (when present) on a.
type Residual struct {
	Pre, Main, Shortcut []Layer
	ShortcutOnPre       bool
	PostReLU            bool

	x, a, out, dsum, dx *tensor.Tensor
	own                 *tensor.Tensor // out's buffer when it is not Main's output
}

func (r *Residual) Describe() string {
	var b strings.Builder
	b.WriteString("residual{")
	if len(r.Pre) > 0 {
		b.WriteString("pre " + (&Sequential{r.Pre}).Describe() + " ")
	}
	b.WriteString("main " + (&Sequential{r.Main}).Describe())
	if len(r.Shortcut) > 0 {
		b.WriteString(" shortcut " + (&Sequential{r.Shortcut}).Describe())
	}
	b.WriteString("}")
	return b.String()
}

func (r *Residual) Params() []*Param { return collectParams(r.Children()) }

// Children returns the layers of Pre, Main and Shortcut, in that order
// (Container).
func (r *Residual) Children() []Layer {
	return append(append(append([]Layer(nil), r.Pre...), r.Main...), r.Shortcut...)
}

// ChildName names child i (of Children) by its branch: "pre.0", "main.2",
// "shortcut.0" (Walk's paths).
func (r *Residual) ChildName(i int) string {
	switch {
	case i < len(r.Pre):
		return "pre." + strconv.Itoa(i)
	case i < len(r.Pre)+len(r.Main):
		return "main." + strconv.Itoa(i-len(r.Pre))
	}
	return "shortcut." + strconv.Itoa(i-len(r.Pre)-len(r.Main))
}

func (r *Residual) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	r.x = x
	a := forwardSeq(r.Pre, x, train)
	r.a = a
	m := forwardSeq(r.Main, a, train)
	in := x
	if r.ShortcutOnPre {
		in = a
	}
	s := forwardSeq(r.Shortcut, in, train)
	if len(m.Data) != len(s.Data) {
		shapePanic("Residual.Forward", "main output %v and shortcut %v differ", m.Shape, s.Shape)
	}
	if len(r.Main) > 0 && outputFree(r.Main[len(r.Main)-1]) && !sameData(m, s) {
		r.out = m // the sum over the main branch's output, which nothing else reads
	} else {
		r.own = tensor.Ensure(r.own, m.Shape...)
		r.out = r.own
	}
	o, md, sd, relu := r.out.Data, m.Data, s.Data, r.PostReLU
	par.For(len(o), 1<<15, func(lo, hi int) {
		if relu {
			tensor.AddReLU(o[lo:hi], md[lo:hi], sd[lo:hi])
		} else {
			tensor.Add(o[lo:hi], md[lo:hi], sd[lo:hi])
		}
	})
	return r.out
}

func (r *Residual) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	need := ctx.NeedDX
	g := dy
	if r.PostReLU {
		dsum := ctx.Grad(&r.dsum, dy.Shape...)
		o, d, s := r.out.Data, dy.Data, dsum.Data
		par.For(len(d), 1<<15, func(lo, hi int) {
			tensor.ReLUMask(s[lo:hi], d[lo:hi], o[lo:hi])
		})
		g = dsum
	}
	// release frees an intermediate gradient once read, unless it is dy
	// (the caller's), g (read by both branches: released last) or the
	// result.
	release := func(t, result *tensor.Tensor) {
		if t != nil && !sameData(t, dy) && !sameData(t, g) && !sameData(t, result) {
			ctx.Done(t)
		}
	}
	preTrain := slices.ContainsFunc(r.Pre, trainable)
	// Gradient w.r.t. a is needed if Pre has trainable layers or the caller needs dx.
	needA := need || preTrain
	ctx.NeedDX = needA
	da := backwardSeq(r.Main, g, ctx)
	var dShort *tensor.Tensor
	shortNeed := need
	if r.ShortcutOnPre {
		shortNeed = needA
	}
	if len(r.Shortcut) == 0 {
		if shortNeed {
			dShort = g
		}
	} else {
		ctx.NeedDX = shortNeed
		dShort = backwardSeq(r.Shortcut, g, ctx)
	}
	ctx.NeedDX = need
	if r.ShortcutOnPre && dShort != nil {
		da = r.sum(ctx, da, dShort, dy, g)
		dShort = nil
	}
	var dx *tensor.Tensor
	if len(r.Pre) == 0 {
		dx = da
	} else if needA {
		ctx.NeedDX = need
		dx = backwardSeq(r.Pre, da, ctx)
		ctx.NeedDX = need
		release(da, dx)
	}
	if need && dShort != nil {
		dx = r.sum(ctx, dx, dShort, dy, g)
	}
	if g != dy && !sameData(g, dx) {
		ctx.Done(g)
	}
	if !need {
		release(dx, nil)
		return nil
	}
	return dx
}

// sum returns a+b (either when the other is nil) without modifying any of
// in (tensors the caller still reads or does not own): in place into a or
// b when it is a lent gradient nobody else reads, else into a buffer from
// ctx.Grad (the block's own without an arena). The operand not returned is
// released.
func (r *Residual) sum(ctx *BackwardContext, a, b *tensor.Tensor, in ...*tensor.Tensor) *tensor.Tensor {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	if len(a.Data) != len(b.Data) {
		shapePanic("Residual.Backward", "gradients %v and %v differ", a.Shape, b.Shape)
	}
	var out *tensor.Tensor
	switch {
	case ctx.overwritable(a, in...):
		out = a
	case ctx.overwritable(b, in...):
		out = b
	default:
		out = ctx.Grad(&r.dx, a.Shape...) // a or b may be r.dx itself: the sum is elementwise
	}
	d, ad, bd := out.Data, a.Data, b.Data
	par.For(len(d), 1<<15, func(lo, hi int) {
		tensor.Add(d[lo:hi], ad[lo:hi], bd[lo:hi])
	})
	for _, t := range []*tensor.Tensor{a, b} {
		if !sameData(t, out) && !slices.ContainsFunc(in, func(u *tensor.Tensor) bool { return sameData(t, u) }) {
			ctx.Done(t)
		}
	}
	return out
}
