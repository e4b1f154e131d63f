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
	r.out = tensor.Ensure(r.out, m.Shape...)
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
		r.dsum = tensor.Ensure(r.dsum, dy.Shape...)
		o, d, s := r.out.Data, dy.Data, r.dsum.Data
		par.For(len(d), 1<<15, func(lo, hi int) {
			tensor.ReLUMask(s[lo:hi], d[lo:hi], o[lo:hi])
		})
		g = r.dsum
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
		da = addInto(&r.dx, da, dShort)
		dShort = nil
	}
	var dx *tensor.Tensor
	if len(r.Pre) == 0 {
		dx = da
	} else if needA {
		ctx.NeedDX = need
		dx = backwardSeq(r.Pre, da, ctx)
		ctx.NeedDX = need
	}
	if !need {
		return nil
	}
	if dShort != nil {
		dx = addInto(&r.dx, dx, dShort)
	}
	return dx
}

// addInto returns a+b in *buf (allocated once), without modifying a or b.
func addInto(buf **tensor.Tensor, a, b *tensor.Tensor) *tensor.Tensor {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	if len(a.Data) != len(b.Data) {
		shapePanic("Residual.Backward", "gradients %v and %v differ", a.Shape, b.Shape)
	}
	// accumulate in place only into our own buffer (when it is a or b).
	if *buf != a && *buf != b {
		*buf = tensor.Ensure(*buf, a.Shape...)
	}
	d, ad, bd := (*buf).Data, a.Data, b.Data
	par.For(len(d), 1<<15, func(lo, hi int) {
		tensor.Add(d[lo:hi], ad[lo:hi], bd[lo:hi])
	})
	return *buf
}
