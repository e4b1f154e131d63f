package nn

import (
	"fmt"

	"dptrain/internal/par"
	"dptrain/tensor"
)

// MaxPool is 2-d max pooling with a square window (padding counts as −∞).
type MaxPool struct {
	K, Stride, Pad int

	inShape []int
	y, dx   *tensor.Tensor
	arg     []int32 // flat input index (within the channel plane) of each output's max (tensor.MaxPoolPlane)
}

func NewMaxPool(k, stride, pad int) *MaxPool { return &MaxPool{K: k, Stride: stride, Pad: pad} }

func (p *MaxPool) Describe() string {
	return fmt.Sprintf("maxpool k%d s%d p%d", p.K, p.Stride, p.Pad)
}
func (*MaxPool) Params() []*Param { return nil }

func (p *MaxPool) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	b, c, h, w, oh, ow := poolShape("MaxPool.Forward", x, p.K, p.Stride, p.Pad)
	p.inShape = append(p.inShape[:0], x.Shape...)
	p.y = tensor.Ensure(p.y, b, c, oh, ow)
	if cap(p.arg) < len(p.y.Data) {
		p.arg = make([]int32, len(p.y.Data))
	}
	p.arg = p.arg[:len(p.y.Data)]
	par.For(b*c, 4, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			tensor.MaxPoolPlane(p.y.Data[pl*oh*ow:(pl+1)*oh*ow], p.arg[pl*oh*ow:(pl+1)*oh*ow], x.Data[pl*h*w:(pl+1)*h*w], h, w, p.K, p.Stride, p.Pad)
		}
	})
	return p.y
}

func (p *MaxPool) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if !ctx.NeedDX {
		return nil
	}
	dx := ctx.Grad(&p.dx, p.inShape...)
	hw := p.inShape[2] * p.inShape[3]
	ohw := dy.Shape[2] * dy.Shape[3]
	par.For(p.inShape[0]*p.inShape[1], 4, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			d := dx.Data[pl*hw : (pl+1)*hw]
			clear(d)
			for o, g := range dy.Data[pl*ohw : (pl+1)*ohw] {
				if a := p.arg[pl*ohw+o]; a >= 0 { // −1: a window in the padding only
					d[a] += g
				}
			}
		}
	})
	return dx
}

// AvgPool is 2-d average pooling with a square window; padded positions
// count in the divisor (PyTorch's count_include_pad=True).
type AvgPool struct {
	K, Stride, Pad int

	inShape []int
	y, dx   *tensor.Tensor
}

func NewAvgPool(k, stride, pad int) *AvgPool { return &AvgPool{K: k, Stride: stride, Pad: pad} }

func (p *AvgPool) Describe() string {
	return fmt.Sprintf("avgpool k%d s%d p%d", p.K, p.Stride, p.Pad)
}
func (*AvgPool) Params() []*Param { return nil }

func (p *AvgPool) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	b, c, h, w, oh, ow := poolShape("AvgPool.Forward", x, p.K, p.Stride, p.Pad)
	p.inShape = append(p.inShape[:0], x.Shape...)
	p.y = tensor.Ensure(p.y, b, c, oh, ow)
	inv := 1 / float32(p.K*p.K)
	par.For(b*c, 4, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			in := x.Data[pl*h*w : (pl+1)*h*w]
			out := p.y.Data[pl*oh*ow : (pl+1)*oh*ow]
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					var s float32
					for ki := 0; ki < p.K; ki++ {
						iy := oy*p.Stride + ki - p.Pad
						if iy < 0 || iy >= h {
							continue
						}
						for kj := 0; kj < p.K; kj++ {
							ix := ox*p.Stride + kj - p.Pad
							if ix >= 0 && ix < w {
								s += in[iy*w+ix]
							}
						}
					}
					out[oy*ow+ox] = s * inv
				}
			}
		}
	})
	return p.y
}

func (p *AvgPool) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if !ctx.NeedDX {
		return nil
	}
	dx := ctx.Grad(&p.dx, p.inShape...)
	h, w := p.inShape[2], p.inShape[3]
	oh, ow := dy.Shape[2], dy.Shape[3]
	inv := 1 / float32(p.K*p.K)
	par.For(p.inShape[0]*p.inShape[1], 4, func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			d := dx.Data[pl*h*w : (pl+1)*h*w]
			clear(d)
			g := dy.Data[pl*oh*ow : (pl+1)*oh*ow]
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					v := g[oy*ow+ox] * inv
					for ki := 0; ki < p.K; ki++ {
						iy := oy*p.Stride + ki - p.Pad
						if iy < 0 || iy >= h {
							continue
						}
						for kj := 0; kj < p.K; kj++ {
							ix := ox*p.Stride + kj - p.Pad
							if ix >= 0 && ix < w {
								d[iy*w+ix] += v
							}
						}
					}
				}
			}
		}
	})
	return dx
}

// GlobalAvgPool averages each channel plane: [B,C,H,W] → [B,C].
type GlobalAvgPool struct {
	inShape []int
	y, dx   *tensor.Tensor
}

func (*GlobalAvgPool) Describe() string { return "global avgpool" }
func (*GlobalAvgPool) Params() []*Param { return nil }

func (p *GlobalAvgPool) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	if len(x.Shape) != 4 {
		shapePanic("GlobalAvgPool.Forward", "input %v, want [B,C,H,W]", x.Shape)
	}
	p.inShape = append(p.inShape[:0], x.Shape...)
	b, c, hw := x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3]
	p.y = tensor.Ensure(p.y, b, c)
	inv := 1 / float32(hw)
	for pl := 0; pl < b*c; pl++ {
		var s float32
		for _, v := range x.Data[pl*hw : (pl+1)*hw] {
			s += v
		}
		p.y.Data[pl] = s * inv
	}
	return p.y
}

func (p *GlobalAvgPool) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if !ctx.NeedDX {
		return nil
	}
	dx := ctx.Grad(&p.dx, p.inShape...)
	hw := p.inShape[2] * p.inShape[3]
	inv := 1 / float32(hw)
	for pl, g := range dy.Data {
		v := g * inv
		d := dx.Data[pl*hw : (pl+1)*hw]
		for i := range d {
			d[i] = v
		}
	}
	return dx
}

// poolShape checks a pooling input [B,C,H,W] and returns its sizes and the
// output plane size for a k×k window.
func poolShape(op string, x *tensor.Tensor, k, stride, pad int) (b, c, h, w, oh, ow int) {
	if len(x.Shape) != 4 {
		shapePanic(op, "input %v, want [B,C,H,W]", x.Shape)
	}
	b, c, h, w = x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	return b, c, h, w, tensor.ConvOut(h, k, stride, pad), tensor.ConvOut(w, k, stride, pad)
}
