package data

import (
	"fmt"
	"math"
)

// resampler resizes CHW uint8 regions with a separable triangle filter whose
// support widens when downscaling (antialiased bilinear, as PIL's BILINEAR
// resize). Its scratch buffers are reused; one resampler per goroutine.
type resampler struct {
	xw, yw filterWeights
	tmp    []float32
	dst    []uint8 // regionU8's destination while it runs
}

type filterWeights struct {
	start []int32   // first source index of each output sample
	n     []int32   // number of taps of each output sample
	w     []float32 // taps, maxTaps per output sample
	taps  int
}

// compute fills f for resampling the source interval [x0, x0+len) of a
// dimension of size size to out samples.
func (f *filterWeights) compute(x0, length float64, size, out int) {
	scale := length / float64(out)
	support := max(scale, 1.0)
	f.taps = int(math.Ceil(support))*2 + 1
	f.start = grow(f.start, out)
	f.n = grow(f.n, out)
	f.w = grow(f.w, out*f.taps)
	for o := range out {
		center := x0 + (float64(o)+0.5)*scale
		lo := max(int(math.Floor(center-support)), 0)
		hi := min(int(math.Ceil(center+support)), size)
		w := f.w[o*f.taps : (o+1)*f.taps]
		var sum float64
		n := 0
		for j := lo; j < hi && n < f.taps; j++ {
			t := 1 - math.Abs(float64(j)+0.5-center)/support
			if t <= 0 {
				if n == 0 {
					lo = j + 1
				}
				continue
			}
			w[n] = float32(t)
			sum += t
			n++
		}
		if n == 0 { // degenerate: nearest pixel
			lo = min(max(int(center), 0), size-1)
			w[0], sum, n = 1, 1, 1
		}
		for k := range n {
			w[k] = float32(float64(w[k]) / sum)
		}
		f.start[o], f.n[o] = int32(lo), int32(n)
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

// region resamples the source rectangle (x0, y0, rw, rh) (in pixels, may be
// fractional) of the c×sh×sw CHW image src to c×dh×dw; store is called with
// channel, row and the row's dw values to store (nil: regionU8's planes).
func (r *resampler) region(src []uint8, c, sh, sw int, x0, y0, rw, rh float64, dh, dw int, store func(ch, y int, row []float32)) {
	r.xw.compute(x0, rw, sw, dw)
	r.yw.compute(y0, rh, sh, dh)
	// Rows and columns of the source that the passes need.
	ylo := int(r.yw.start[0])
	yhi := int(r.yw.start[dh-1] + r.yw.n[dh-1])
	xlo := int(r.xw.start[0])
	xhi := int(r.xw.start[dw-1] + r.xw.n[dw-1])
	rows, cols := yhi-ylo, xhi-xlo
	// Filter first along the dimension that shrinks: the vertical pass
	// (contiguous rows, vectorised) over the source's columns, then the
	// horizontal (a gather per output) over the dh rows only, when the
	// image shrinks vertically; otherwise horizontal first over the rows
	// needed. Both orders are exact in their own right (the sums of
	// products of the same weights); which one runs depends only on the
	// geometry.
	vFirst := dh < rows
	if vFirst {
		r.tmp = grow(r.tmp, dh*cols+dh*dw)
	} else {
		r.tmp = grow(r.tmp, rows*dw+dh*dw)
	}
	tmp, out := r.tmp[:len(r.tmp)-dh*dw], r.tmp[len(r.tmp)-dh*dw:]
	for ch := range c {
		plane := src[ch*sh*sw : (ch+1)*sh*sw]
		if vFirst {
			resampleVU8(plane, sw, xlo, cols, &r.yw, dh, tmp)
			resampleHF(tmp, cols, xlo, &r.xw, dw, dh, out)
		} else {
			resampleH(plane[ylo*sw:yhi*sw], sw, &r.xw, dw, tmp)
			resampleV(tmp, dw, ylo, &r.yw, dh, out)
		}
		if store == nil {
			clampU8Plane(out, r.dst[ch*dh*dw:(ch+1)*dh*dw])
			continue
		}
		for y := range dh {
			store(ch, y, out[y*dw:(y+1)*dw])
		}
	}
}

// resampleVU8Go is the vertical pass on the source (when it runs first):
// row y of tmp (cols values, source columns from xlo) is the source rows
// of plane (sw wide) filtered by f, summed over the taps in order,
// products rounded.
func resampleVU8Go(plane []uint8, sw, xlo, cols int, f *filterWeights, dh int, tmp []float32) {
	for y := range dh {
		s := int(f.start[y])
		w := f.w[y*f.taps : y*f.taps+int(f.n[y])]
		trow := tmp[y*cols : (y+1)*cols]
		clear(trow)
		for k, wk := range w {
			srow := plane[(s+k)*sw+xlo:][:cols]
			for x, v := range srow {
				trow[x] += float32(wk * float32(v))
			}
		}
	}
}

// resampleHFGo is the horizontal pass after the vertical one: each of the
// dh rows of tmp (cols values from source column xlo) filtered by f into
// dw values of out, summed over the taps in order, products rounded.
func resampleHFGo(tmp []float32, cols, xlo int, f *filterWeights, dw, dh int, out []float32) {
	for y := range dh {
		trow := tmp[y*cols : (y+1)*cols]
		orow := out[y*dw : (y+1)*dw]
		for o := range dw {
			s := int(f.start[o]) - xlo
			w := f.w[o*f.taps : o*f.taps+int(f.n[o])]
			var acc float32
			for k, wk := range w {
				acc += float32(wk * trow[s+k])
			}
			orow[o] = acc
		}
	}
}

// regionU8 is region storing rounded, clamped uint8 (clampU8) into dst
// (c×dh×dw).
func (r *resampler) regionU8(src []uint8, c, sh, sw int, x0, y0, rw, rh float64, dh, dw int, dst []uint8) {
	r.dst = dst[:c*dh*dw]
	r.region(src, c, sh, sw, x0, y0, rw, rh, dh, dw, nil)
	r.dst = nil
}

// clampU8PlaneGo is clampU8 of each value.
func clampU8PlaneGo(v []float32, dst []uint8) {
	for i, x := range v[:len(dst)] {
		dst[i] = clampU8(x)
	}
}

// resampleHGo is the horizontal pass: each source row of rows (sw pixels
// each) filtered by f into dw values of tmp. Each sum runs over the taps in
// order, in float32, every product rounded (no fused multiply-add), so the
// C kernel gives the same bits.
func resampleHGo(rows []uint8, sw int, f *filterWeights, dw int, tmp []float32) {
	for y := range len(rows) / sw {
		srow := rows[y*sw : (y+1)*sw]
		trow := tmp[y*dw : (y+1)*dw]
		for o := range dw {
			s := int(f.start[o])
			w := f.w[o*f.taps : o*f.taps+int(f.n[o])]
			var acc float32
			for k, wk := range w {
				acc += float32(wk * float32(srow[s+k]))
			}
			trow[o] = acc
		}
	}
}

// resampleVGo is the vertical pass: output row y of out (dh rows of dw) is
// the rows of tmp (source rows from ylo) filtered by f, summed over the
// taps in order, products rounded.
func resampleVGo(tmp []float32, dw, ylo int, f *filterWeights, dh int, out []float32) {
	for y := range dh {
		s := int(f.start[y]) - ylo
		w := f.w[y*f.taps : y*f.taps+int(f.n[y])]
		orow := out[y*dw : (y+1)*dw]
		clear(orow)
		for k, wk := range w {
			trow := tmp[(s+k)*dw : (s+k+1)*dw]
			for o, v := range trow {
				orow[o] += float32(wk * v)
			}
		}
	}
}

// ResizeImage returns a c×h×w uint8 image brought to c×size×size by mode,
// with the resampling imagefolder uses on load (antialiased bilinear).
func ResizeImage(src []uint8, c, h, w int, mode ResizeMode, size int) []uint8 {
	if len(src) < c*h*w || size < 1 {
		panic(fmt.Sprintf("data.ResizeImage: %d pixels for %d×%d×%d, size %d", len(src), c, h, w, size))
	}
	dst := make([]uint8, c*size*size)
	var r resampler
	r.resizeSquare(src, c, h, w, mode, size, dst)
	return dst
}

// resizeSquare brings a c×sh×sw image to c×size×size uint8 in dst, by mode.
func (r *resampler) resizeSquare(src []uint8, c, sh, sw int, mode ResizeMode, size int, dst []uint8) {
	if sh == size && sw == size {
		copy(dst, src[:c*size*size])
		return
	}
	x0, y0, rw, rh := 0.0, 0.0, float64(sw), float64(sh)
	if mode == ResizeShorterCenter {
		side := float64(min(sh, sw))
		x0, y0 = (rw-side)/2, (rh-side)/2
		rw, rh = side, side
	}
	r.regionU8(src, c, sh, sw, x0, y0, rw, rh, size, size, dst)
}

func clampU8(v float32) uint8 {
	v += 0.5
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}

// shortSideSize is the size resizeShortSide gives an h×w image: the
// shorter side short, the longer scaled alike (rounded, at least short)
// and capped at MaxAspect·short.
func shortSideSize(h, w, short int) (oh, ow int) {
	long := func(l, s int) int {
		v := int(math.Round(float64(l) * float64(short) / float64(s)))
		return min(max(v, short), MaxAspect*short)
	}
	if h <= w {
		return short, long(w, h)
	}
	return long(h, w), short
}

// resizeShortSide brings a c×h×w image to c×oh×ow (shortSideSize) in dst:
// the whole image, or, when the longer side is capped, its centre.
func (r *resampler) resizeShortSide(src []uint8, c, h, w, short int, dst []uint8) {
	oh, ow := shortSideSize(h, w, short)
	if oh == h && ow == w {
		copy(dst, src[:c*h*w])
		return
	}
	x0, y0, rw, rh := 0.0, 0.0, float64(w), float64(h)
	// Source extent of the output: the scale is that of the shorter side.
	scale := float64(min(h, w)) / float64(short)
	if v := float64(ow) * scale; v < rw {
		x0, rw = (rw-v)/2, v
	}
	if v := float64(oh) * scale; v < rh {
		y0, rh = (rh-v)/2, v
	}
	r.regionU8(src, c, h, w, x0, y0, rw, rh, oh, ow, dst)
}
