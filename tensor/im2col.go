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

// span returns the range [lo, hi) of output positions o ∈ [0, n) whose
// input coordinate o·s + k − p lies in [0, in); lo ≤ hi ≤ n always (an empty
// range has lo = hi).
func span(n, in, k, s, p int) (lo, hi int) {
	if p > k {
		lo = (p - k + s - 1) / s
	}
	lo = min(lo, n)
	hi = lo
	if last := in - 1 + p - k; last >= 0 {
		hi = max(lo, min(n, last/s+1))
	}
	return lo, hi
}

// zero clears a short slice with stores (clear would call memclr, whose call
// costs more than the 0–3 elements of padding it usually covers here).
func zero(s []float32) {
	if len(s) > 16 {
		clear(s)
		return
	}
	for i := 0; i < len(s); i++ {
		s[i] = 0
	}
}

// Im2colStrided is Im2col into a matrix whose rows are ld ≥ oh·ow apart, so
// that the patches of several examples can sit side by side (example a's in
// columns [a·oh·ow, (a+1)·oh·ow) of a matrix with ld = n·oh·ow).
//
// Each row is written once: the valid window of output positions is
// computed per (ki, kj), and a stride-1 row with ow = w (every "same"
// convolution) is a single shifted copy of the channel plane followed by
// zeroing the ≤ p wrapped columns of each output row.
func Im2colStrided(dst []float32, ld int, x []float32, c, h, w, kh, kw, stride, pad int) {
	oh, ow := ConvOut(h, kh, stride, pad), ConvOut(w, kw, stride, pad)
	rows := c * kh * kw
	if len(x) != c*h*w || ld < oh*ow || oh < 1 || ow < 1 || len(dst) < (rows-1)*ld+oh*ow {
		shapePanic("Im2colStrided", "x len %d (want %d), dst len %d too short for %d rows of %d with stride %d", len(x), c*h*w, len(dst), rows, oh*ow, ld)
	}
	if useTable(h, w, kh, kw, stride, oh, ow) {
		im2colTable(dst, ld, x, c, h, w, kh, kw, stride, pad)
		return
	}
	if kh == 3 && kw == 3 && stride == 1 && pad == 1 && w < smallW {
		im2col3x3(dst, ld, x, c, h, w)
		return
	}
	t, hw, s, p := oh*ow, h*w, stride, pad
	for ci := 0; ci < c; ci++ {
		xc := x[ci*hw : (ci+1)*hw]
		for ki := 0; ki < kh; ki++ {
			oy0, oy1 := span(oh, h, ki, s, p)
			for kj := 0; kj < kw; kj++ {
				row := dst[((ci*kh+ki)*kw+kj)*ld:][:t]
				ox0, ox1 := span(ow, w, kj, s, p)
				if oy0 == oy1 || ox0 == ox1 {
					clear(row)
					continue
				}
				if s == 1 && ow == w {
					im2colShifted(row, xc, w, oy0, oy1, ox0, ox1, (ki-p)*w+kj-p)
					continue
				}
				zero(row[:oy0*ow])
				zero(row[oy1*ow:])
				n := ox1 - ox0
				for oy := oy0; oy < oy1; oy++ {
					out := row[oy*ow : (oy+1)*ow]
					zero(out[:ox0])
					zero(out[ox1:])
					o := out[ox0:ox1]
					src := xc[(oy*s+ki-p)*w+ox0*s+kj-p:]
					switch s {
					case 1:
						copy(o, src[:n])
					case 2:
						src = src[:2*n-1]
						for i := range o {
							o[i] = src[2*i]
						}
					default:
						src = src[:s*(n-1)+1]
						for i := range o {
							o[i] = src[s*i]
						}
					}
				}
			}
		}
	}
}

// Sizes of the on-stack gather table (int32 entries) and channel plane
// (floats, one more for the zero that padding reads) of im2colTable.
const (
	tableMax = 2560
	planeMax = 1024
)

func useTable(h, w, kh, kw, s, oh, ow int) bool {
	return s > 1 && kh*kw*oh*ow <= tableMax && h*w <= planeMax
}

// im2colTable is Im2colStrided for strided convolutions on small planes,
// where the general path's per-row bookkeeping around an element-by-element
// strided copy costs more than a gather (≈1.3–1.8× faster on ResNet's
// stride-2 layers; for stride 1 the block copies win): a table, built once
// per call, gives for
// each entry of one channel's kh·kw rows the index of its input pixel in
// the channel plane, or that of a zero placed after it (padding). Each
// channel is then copied next to that zero and every row is one gather.
func im2colTable(dst []float32, ld int, x []float32, c, h, w, kh, kw, s, p int) {
	var tabBuf [tableMax]int32
	var planeBuf [planeMax + 1]float32
	oh, ow := ConvOut(h, kh, s, p), ConvOut(w, kw, s, p)
	t, hw, k2 := oh*ow, h*w, kh*kw
	tab := tabBuf[:k2*t]
	buildTable(tab, h, w, kh, kw, s, p)
	plane := planeBuf[:hw+1]
	plane[hw] = 0
	for ci := 0; ci < c; ci++ {
		copy(plane, x[ci*hw:(ci+1)*hw])
		for r := 0; r < k2; r++ {
			row := dst[(ci*k2+r)*ld:][:t]
			tr := tab[r*t:][:t]
			for i, j := range tr {
				row[i] = plane[j]
			}
		}
	}
}

// buildTable fills tab (kh·kw·oh·ow entries) with, for each entry of one
// channel's rows of the patch matrix, the index of its pixel in the h×w
// channel plane, or h·w for padding.
func buildTable(tab []int32, h, w, kh, kw, s, p int) {
	oh, ow := ConvOut(h, kh, s, p), ConvOut(w, kw, s, p)
	t, hw := oh*ow, h*w
	for ki := 0; ki < kh; ki++ {
		for kj := 0; kj < kw; kj++ {
			tr := tab[(ki*kw+kj)*t:][:t]
			for oy := 0; oy < oh; oy++ {
				iy := oy*s + ki - p
				for ox := 0; ox < ow; ox++ {
					ix := ox*s + kj - p
					j := hw
					if iy >= 0 && iy < h && ix >= 0 && ix < w {
						j = iy*w + ix
					}
					tr[oy*ow+ox] = int32(j)
				}
			}
		}
	}
}

// smallW is the width below which 3×3 stride-1 rows are built by one
// fused loop instead of shifted block copies.
const smallW = 16

// im2col3x3 is Im2colStrided for 3×3 kernels, stride 1, padding 1 (so
// oh = h, ow = w) on narrow planes: the three rows kj = 0, 1, 2 of one
// (ci, ki) are filled together from one read of each input row.
func im2col3x3(dst []float32, ld int, x []float32, c, h, w int) {
	hw := h * w
	for ci := 0; ci < c; ci++ {
		xc := x[ci*hw:][:hw]
		for ki := 0; ki < 3; ki++ {
			r := dst[(ci*9+ki*3)*ld:]
			a, b, cc := r[:hw], r[ld:][:hw], r[2*ld:][:hw]
			// output rows oy read input row iy = oy+ki−1 ∈ [0, h).
			oy0, oy1 := max(0, 1-ki), min(h, h+1-ki)
			zero(a[:oy0*w])
			zero(b[:oy0*w])
			zero(cc[:oy0*w])
			zero(a[oy1*w:])
			zero(b[oy1*w:])
			zero(cc[oy1*w:])
			for oy := oy0; oy < oy1; oy++ {
				src := xc[(oy+ki-1)*w:][:w]
				row3(a[oy*w:][:w], b[oy*w:][:w], cc[oy*w:][:w], src)
			}
		}
	}
}

// row3 sets a[i] = src[i−1], b[i] = src[i], c[i] = src[i+1] (0 outside src).
func row3(a, b, c, src []float32) {
	n := len(src)
	a, b, c = a[:n], b[:n], c[:n]
	a[0], b[0], c[n-1] = 0, src[0], 0
	for i := 1; i < n; i++ {
		v := src[i]
		a[i], b[i], c[i-1] = src[i-1], v, v
	}
}

// im2colShifted fills one stride-1 row of a convolution with ow = w: output
// position idx = oy·w+ox reads xc[idx+shift], valid rows [oy0, oy1), valid
// columns [ox0, ox1).
func im2colShifted(row, xc []float32, w, oy0, oy1, ox0, ox1, shift int) {
	lo, hi := max(oy0*w, -shift), min(oy1*w, len(xc)-shift)
	zero(row[:lo])
	zero(row[hi:])
	copy(row[lo:hi], xc[lo+shift:hi+shift])
	if ox0 == 0 && ox1 == w {
		return
	}
	for oy := oy0; oy < oy1; oy++ {
		out := row[oy*w : (oy+1)*w]
		for i := 0; i < ox0; i++ {
			out[i] = 0
		}
		for i := ox1; i < len(out); i++ {
			out[i] = 0
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
	col2im("Col2imStrided", dx, col, ld, c, h, w, kh, kw, stride, pad, false)
}

// Col2imStridedTo is Col2imStrided into dx overwritten instead of
// accumulated into (it costs no more than Col2imStrided, and saves clearing
// dx first).
func Col2imStridedTo(dx, col []float32, ld int, c, h, w, kh, kw, stride, pad int) {
	col2im("Col2imStridedTo", dx, col, ld, c, h, w, kh, kw, stride, pad, true)
}

func col2im(op string, dx, col []float32, ld int, c, h, w, kh, kw, stride, pad int, set bool) {
	oh, ow := ConvOut(h, kh, stride, pad), ConvOut(w, kw, stride, pad)
	rows := c * kh * kw
	if len(dx) != c*h*w || ld < oh*ow || oh < 1 || ow < 1 || len(col) < (rows-1)*ld+oh*ow {
		shapePanic(op, "dx len %d (want %d), col len %d too short for %d rows of %d with stride %d", len(dx), c*h*w, len(col), rows, oh*ow, ld)
	}
	if kh == 3 && kw == 3 && stride == 1 && pad == 1 {
		col2im3x3(dx, col, ld, c, h, w, set)
		return
	}
	t, hw, s, p := oh*ow, h*w, stride, pad
	for ci := 0; ci < c; ci++ {
		xc := dx[ci*hw : (ci+1)*hw]
		if set {
			// cleared per channel, just before it is accumulated into (in cache).
			clear(xc)
		}
		for ki := 0; ki < kh; ki++ {
			oy0, oy1 := span(oh, h, ki, s, p)
			for kj := 0; kj < kw; kj++ {
				row := col[((ci*kh+ki)*kw+kj)*ld:][:t]
				ox0, ox1 := span(ow, w, kj, s, p)
				n := ox1 - ox0
				if n == 0 {
					continue
				}
				for oy := oy0; oy < oy1; oy++ {
					in := row[oy*ow+ox0 : oy*ow+ox1]
					d := xc[(oy*s+ki-p)*w+ox0*s+kj-p:]
					switch s {
					case 1:
						d = d[:n]
						for i, v := range in {
							d[i] += v
						}
					case 2:
						d = d[:2*n-1]
						for i, v := range in {
							d[2*i] += v
						}
					default:
						d = d[:s*(n-1)+1]
						for i, v := range in {
							d[s*i] += v
						}
					}
				}
			}
		}
	}
}

// col2im3x3 is col2im for 3×3 kernels, stride 1, padding 1 (oh = h,
// ow = w), as a gather: input row iy of channel ci is the sum over ki of
// three shifted output rows oy = iy−ki+1, so each dx element is loaded and
// stored at most three times instead of nine.
func col2im3x3(dx, col []float32, ld, c, h, w int, set bool) {
	hw := h * w
	for ci := 0; ci < c; ci++ {
		xc := dx[ci*hw : (ci+1)*hw]
		rc := col[ci*9*ld:]
		for iy := 0; iy < h; iy++ {
			out := xc[iy*w : (iy+1)*w]
			first := set
			for ki := 0; ki < 3; ki++ {
				oy := iy - ki + 1
				if oy < 0 || oy >= h {
					continue
				}
				a := rc[(ki*3)*ld+oy*w:][:w]
				b := rc[(ki*3+1)*ld+oy*w:][:w]
				cc := rc[(ki*3+2)*ld+oy*w:][:w]
				add3(out, a, b, cc, first)
				first = false
			}
		}
	}
}

// add3 sets (set) or adds to out[i] the sum a[i+1] + b[i] + c[i−1] (terms
// outside [0, len) omitted); a, b, c have len(out) elements.
func add3(out, a, b, c []float32, set bool) {
	n := len(out)
	if n == 1 {
		if set {
			out[0] = b[0]
		} else {
			out[0] += b[0]
		}
		return
	}
	a, b, c = a[1:n], b[:n], c[:n-1]
	if set {
		out[0] = a[0] + b[0]
		out[n-1] = b[n-1] + c[n-2]
		o := out[1 : n-1]
		a, b, c = a[1:], b[1:n-1], c[:n-2]
		a = a[:len(o)]
		for i := range o {
			o[i] = a[i] + b[i] + c[i]
		}
		return
	}
	out[0] += a[0] + b[0]
	out[n-1] += b[n-1] + c[n-2]
	o := out[1 : n-1]
	a, b, c = a[1:], b[1:n-1], c[:n-2]
	a = a[:len(o)]
	for i := range o {
		o[i] += a[i] + b[i] + c[i]
	}
}
