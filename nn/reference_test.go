package nn_test

import (
	"fmt"
	"math"

	"dptrain/nn"
	"dptrain/nn/nntest"
)

// This file holds the naive float64 reference forward passes that the layer
// tests check the fast float32 kernels against, and differentiate by central
// finite differences. They share no code with the layers: direct loops over
// the definitions.

type refParams = map[*nn.Param][]float64

// reference returns refForward of l, for inputs of shape in, as an
// nntest.Reference.
func reference(l nn.Layer, in []int) nntest.Reference {
	ps := l.Params()
	return func(x []float64, params [][]float64) []float64 {
		m := refParams{}
		for i, p := range ps {
			m[p] = params[i]
		}
		return refForward(l, ref{x, in}, m).x
	}
}

type ref struct {
	x     []float64
	shape []int
}

func refForward(l nn.Layer, in ref, ps refParams) ref {
	switch v := l.(type) {
	case *nn.Sequential:
		return refSeq(v.Layers, in, ps)
	case *nn.Residual:
		a := refSeq(v.Pre, in, ps)
		m := refSeq(v.Main, a, ps)
		src := in
		if v.ShortcutOnPre {
			src = a
		}
		s := refSeq(v.Shortcut, src, ps)
		out := make([]float64, len(m.x))
		for i := range out {
			out[i] = m.x[i] + s.x[i]
			if v.PostReLU && out[i] < 0 {
				out[i] = 0
			}
		}
		return ref{out, m.shape}
	case *nn.Linear:
		b := in.shape[0]
		w := ps[v.W]
		out := make([]float64, b*v.Out)
		for i := 0; i < b; i++ {
			for o := 0; o < v.Out; o++ {
				s := 0.0
				if v.B != nil {
					s = ps[v.B][o]
				}
				for j := 0; j < v.In; j++ {
					s += w[o*v.In+j] * in.x[i*v.In+j]
				}
				out[i*v.Out+o] = s
			}
		}
		return ref{out, []int{b, v.Out}}
	case *nn.Conv2d:
		return refConv(v, in, ps)
	case *nn.GroupNorm:
		b, c, hw := in.shape[0], in.shape[1], in.shape[2]*in.shape[3]
		cg := c / v.Groups
		out := make([]float64, len(in.x))
		for i := 0; i < b; i++ {
			for g := 0; g < v.Groups; g++ {
				var mu, va float64
				n := float64(cg * hw)
				for ch := g * cg; ch < (g+1)*cg; ch++ {
					for q := 0; q < hw; q++ {
						mu += in.x[(i*c+ch)*hw+q]
					}
				}
				mu /= n
				for ch := g * cg; ch < (g+1)*cg; ch++ {
					for q := 0; q < hw; q++ {
						d := in.x[(i*c+ch)*hw+q] - mu
						va += d * d
					}
				}
				va /= n
				for ch := g * cg; ch < (g+1)*cg; ch++ {
					ga, be := 1.0, 0.0
					if v.Gamma != nil {
						ga, be = ps[v.Gamma][ch], ps[v.Beta][ch]
					}
					for q := 0; q < hw; q++ {
						idx := (i*c+ch)*hw + q
						out[idx] = ga*(in.x[idx]-mu)/math.Sqrt(va+float64(v.Eps)) + be
					}
				}
			}
		}
		return ref{out, in.shape}
	case *nn.BatchNorm2d:
		c, hw := in.shape[1], in.shape[2]*in.shape[3]
		mean, variance := ps[v.Mean], ps[v.Var]
		out := make([]float64, len(in.x))
		for i, x := range in.x {
			ch := (i / hw) % c
			y := (x - mean[ch]) / math.Sqrt(variance[ch]+float64(v.Eps))
			if v.Gamma != nil {
				y = ps[v.Gamma][ch]*y + ps[v.Beta][ch]
			}
			out[i] = y
		}
		return ref{out, in.shape}
	case *nn.Standardize:
		c, hw := in.shape[1], in.shape[2]*in.shape[3]
		mean, variance := ps[v.Mean], ps[v.Var]
		out := make([]float64, len(in.x))
		for i, x := range in.x {
			if ch := (i / hw) % c; variance[ch] != 0 {
				out[i] = (x - mean[ch]) / math.Sqrt(variance[ch]+float64(v.Eps))
			}
		}
		return ref{out, in.shape}
	case *nn.ReLU:
		out := make([]float64, len(in.x))
		for i, x := range in.x {
			out[i] = math.Max(x, 0)
		}
		return ref{out, in.shape}
	case *nn.Tanh:
		out := make([]float64, len(in.x))
		for i, x := range in.x {
			out[i] = math.Tanh(x)
		}
		return ref{out, in.shape}
	case *nn.MaxPool:
		return refPool(in, v.K, v.Stride, v.Pad, true)
	case *nn.AvgPool:
		return refPool(in, v.K, v.Stride, v.Pad, false)
	case *nn.GlobalAvgPool:
		b, c, hw := in.shape[0], in.shape[1], in.shape[2]*in.shape[3]
		out := make([]float64, b*c)
		for i := range out {
			for q := 0; q < hw; q++ {
				out[i] += in.x[i*hw+q] / float64(hw)
			}
		}
		return ref{out, []int{b, c}}
	case *nn.Flatten:
		return ref{in.x, []int{in.shape[0], len(in.x) / in.shape[0]}}
	}
	panic(fmt.Sprintf("no reference for %T", l))
}

func refSeq(ls []nn.Layer, in ref, ps refParams) ref {
	for _, l := range ls {
		in = refForward(l, in, ps)
	}
	return in
}

func refConv(v *nn.Conv2d, in ref, ps refParams) ref {
	b, cin, h, w := in.shape[0], in.shape[1], in.shape[2], in.shape[3]
	oh, ow := (h+2*v.Pad-v.K)/v.Stride+1, (w+2*v.Pad-v.K)/v.Stride+1
	wt := ps[v.W]
	d := cin * v.K * v.K
	if v.WS {
		std := make([]float64, len(wt))
		for o := 0; o < v.Cout; o++ {
			var mu, va float64
			for j := 0; j < d; j++ {
				mu += wt[o*d+j]
			}
			mu /= float64(d)
			for j := 0; j < d; j++ {
				va += (wt[o*d+j] - mu) * (wt[o*d+j] - mu)
			}
			va /= float64(d)
			for j := 0; j < d; j++ {
				std[o*d+j] = (wt[o*d+j] - mu) / math.Sqrt(va+nn.WSEpsilon)
			}
		}
		wt = std
	}
	out := make([]float64, b*v.Cout*oh*ow)
	for i := 0; i < b; i++ {
		for o := 0; o < v.Cout; o++ {
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					s := 0.0
					if v.B != nil {
						s = ps[v.B][o]
					}
					for ci := 0; ci < cin; ci++ {
						for ki := 0; ki < v.K; ki++ {
							for kj := 0; kj < v.K; kj++ {
								iy, ix := oy*v.Stride+ki-v.Pad, ox*v.Stride+kj-v.Pad
								if iy < 0 || iy >= h || ix < 0 || ix >= w {
									continue
								}
								s += wt[((o*cin+ci)*v.K+ki)*v.K+kj] * in.x[((i*cin+ci)*h+iy)*w+ix]
							}
						}
					}
					out[((i*v.Cout+o)*oh+oy)*ow+ox] = s
				}
			}
		}
	}
	return ref{out, []int{b, v.Cout, oh, ow}}
}

func refPool(in ref, k, s, p int, isMax bool) ref {
	b, c, h, w := in.shape[0], in.shape[1], in.shape[2], in.shape[3]
	oh, ow := (h+2*p-k)/s+1, (w+2*p-k)/s+1
	out := make([]float64, b*c*oh*ow)
	for pl := 0; pl < b*c; pl++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				acc := math.Inf(-1)
				if !isMax {
					acc = 0
				}
				for ki := 0; ki < k; ki++ {
					for kj := 0; kj < k; kj++ {
						iy, ix := oy*s+ki-p, ox*s+kj-p
						if iy < 0 || iy >= h || ix < 0 || ix >= w {
							continue
						}
						x := in.x[(pl*h+iy)*w+ix]
						if isMax {
							acc = math.Max(acc, x)
						} else {
							acc += x / float64(k*k)
						}
					}
				}
				out[(pl*oh+oy)*ow+ox] = acc
			}
		}
	}
	return ref{out, []int{b, c, oh, ow}}
}
