package tensor

// ConvOut returns the output size of a convolution or pooling window along
// one axis: floor((in + 2·pad − k)/stride) + 1.
func ConvOut(in, k, stride, pad int) int {
	return (in+2*pad-k)/stride + 1
}

// Im2col unfolds one example x (c×h×w) into dst, the (c·kh·kw)×(oh·ow) patch
// matrix of a convolution with the given kernel, stride and zero padding.
// Row r = (ci·kh + ki)·kw + kj holds x[ci, oy·s+ki−p, ox·s+kj−p] at column
// oy·ow+ox (0 outside the image).
func Im2col(dst, x []float32, c, h, w, kh, kw, stride, pad int) {
	oh, ow := ConvOut(h, kh, stride, pad), ConvOut(w, kw, stride, pad)
	if len(dst) != c*kh*kw*oh*ow {
		shapePanic("Im2col", "dst len %d (want %d)", len(dst), c*kh*kw*oh*ow)
	}
	Im2colStrided(dst, oh*ow, x, c, h, w, kh, kw, stride, pad)
}

// Im2colStrided is Im2col into a matrix whose rows are ld ≥ oh·ow apart, so
// that the patches of several examples can sit side by side (example a's in
// columns [a·oh·ow, (a+1)·oh·ow) of a matrix with ld = n·oh·ow).
func Im2colStrided(dst []float32, ld int, x []float32, c, h, w, kh, kw, stride, pad int) {
	oh, ow := ConvOut(h, kh, stride, pad), ConvOut(w, kw, stride, pad)
	rows := c * kh * kw
	if len(x) != c*h*w || ld < oh*ow || len(dst) < (rows-1)*ld+oh*ow {
		shapePanic("Im2colStrided", "x len %d (want %d), dst len %d too short for %d rows of %d with stride %d", len(x), c*h*w, len(dst), rows, oh*ow, ld)
	}
	for ci := 0; ci < c; ci++ {
		xc := x[ci*h*w : (ci+1)*h*w]
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				row := dst[((ci*kh+ki)*kw+kj)*ld:][:oh*ow]
				for oy := 0; oy < oh; oy++ {
					iy := oy*stride + ki - pad
					out := row[oy*ow : (oy+1)*ow]
					if iy < 0 || iy >= h {
						clear(out)
						continue
					}
					xr := xc[iy*w : (iy+1)*w]
					if stride == 1 {
						// contiguous run: ix = ox + kj - pad
						lo := max(0, pad-kj)
						hi := min(ow, w+pad-kj)
						clear(out[:lo])
						if hi > lo {
							copy(out[lo:hi], xr[lo+kj-pad:hi+kj-pad])
						}
						if hi < lo {
							hi = lo
						}
						clear(out[hi:])
						continue
					}
					for ox := range out {
						ix := ox*stride + kj - pad
						if ix < 0 || ix >= w {
							out[ox] = 0
						} else {
							out[ox] = xr[ix]
						}
					}
				}
			}
		}
	}
}

// Col2im is the adjoint of Im2col: it adds the patch matrix col back into
// dx (c×h×w), summing where windows overlap. dx is accumulated into, not
// overwritten.
func Col2im(dx, col []float32, c, h, w, kh, kw, stride, pad int) {
	oh, ow := ConvOut(h, kh, stride, pad), ConvOut(w, kw, stride, pad)
	if len(col) != c*kh*kw*oh*ow {
		shapePanic("Col2im", "col len %d (want %d)", len(col), c*kh*kw*oh*ow)
	}
	Col2imStrided(dx, col, oh*ow, c, h, w, kh, kw, stride, pad)
}

// Col2imStrided is Col2im from a patch matrix whose rows are ld apart.
func Col2imStrided(dx, col []float32, ld int, c, h, w, kh, kw, stride, pad int) {
	oh, ow := ConvOut(h, kh, stride, pad), ConvOut(w, kw, stride, pad)
	rows := c * kh * kw
	if len(dx) != c*h*w || ld < oh*ow || len(col) < (rows-1)*ld+oh*ow {
		shapePanic("Col2imStrided", "dx len %d (want %d), col len %d too short for %d rows of %d with stride %d", len(dx), c*h*w, len(col), rows, oh*ow, ld)
	}
	for ci := 0; ci < c; ci++ {
		xc := dx[ci*h*w : (ci+1)*h*w]
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				row := col[((ci*kh+ki)*kw+kj)*ld:][:oh*ow]
				for oy := 0; oy < oh; oy++ {
					iy := oy*stride + ki - pad
					if iy < 0 || iy >= h {
						continue
					}
					xr := xc[iy*w : (iy+1)*w]
					in := row[oy*ow : (oy+1)*ow]
					if stride == 1 {
						lo := max(0, pad-kj)
						hi := min(ow, w+pad-kj)
						for ox := lo; ox < hi; ox++ {
							xr[ox+kj-pad] += in[ox]
						}
						continue
					}
					for ox, v := range in {
						ix := ox*stride + kj - pad
						if ix >= 0 && ix < w {
							xr[ix] += v
						}
					}
				}
			}
		}
	}
}
