package tensor

import "math"

// MaxPoolPlane max-pools one h×w plane with a k×k window at the given
// stride and padding (padded positions count as −∞): out and arg hold
// the ConvOut(h, k, stride, pad) × ConvOut(w, k, stride, pad) outputs and
// the index in the plane of each one's maximum. The maximum of a window is
// its first element, then each later one that is greater, in row-major
// order, with NaN never greater (the definition a test checks); a window
// entirely in the padding gives −∞ and index −1. in is not modified.
//
// With cgo on amd64 it runs a vectorised C kernel (pool_c.c) that scans
// the window's offsets for a row of outputs at once, with the same
// integer keys and the same order, so it gives the Go loop's results.
// Where windows overlap and are strided (k > stride > 1) a second C
// kernel takes each row's horizontal maxima from the row split into its
// stride phases, then combines rows, ties to the earlier column and then
// the earlier row (the same first maximum in row-major order); a plane
// with a NaN goes to the first kernel.
func MaxPoolPlane(out []float32, arg []int32, in []float32, h, w, k, stride, pad int) {
	if h < 1 || w < 1 || k < 1 || stride < 1 || pad < 0 || h*w > math.MaxInt32 || len(in) < h*w {
		shapePanic("MaxPoolPlane", "plane %d×%d (%d values), window %d stride %d pad %d", h, w, len(in), k, stride, pad)
	}
	oh, ow := ConvOut(h, k, stride, pad), ConvOut(w, k, stride, pad)
	if oh < 1 || ow < 1 {
		return // no outputs (ConvOut below 1)
	}
	if len(out) < oh*ow || len(arg) < oh*ow {
		shapePanic("MaxPoolPlane", "%d×%d outputs into %d values and %d indices", oh, ow, len(out), len(arg))
	}
	if haveCKernels {
		maxPoolPlaneC(out, arg, in, h, w, oh, ow, k, stride, pad)
		return
	}
	maxPoolPlaneGo(out, arg, in, h, w, oh, ow, k, stride, pad)
}

func maxPoolPlaneGo(out []float32, arg []int32, in []float32, h, w, oh, ow, k, stride, pad int) {
	for oy := 0; oy < oh; oy++ {
		y0 := oy*stride - pad
		y1 := min(h, y0+k)
		y0 = max(0, y0)
		for ox := 0; ox < ow; ox++ {
			x0 := ox*stride - pad
			x1 := min(w, x0+k)
			x0 = max(0, x0)
			if y0 >= y1 || x0 >= x1 {
				out[oy*ow+ox], arg[oy*ow+ox] = float32(math.Inf(-1)), -1
				continue
			}
			bi := windowArgmax(in, w, y0, y1, x0, x1)
			out[oy*ow+ox], arg[oy*ow+ox] = in[bi], bi
		}
	}
}

// orderKey maps a float32 to an int32 with the same order (−0 and +0
// equal; NaNs above +Inf or below −Inf by their sign bit).
func orderKey(v float32) int32 {
	b := int32(math.Float32bits(v))
	m := b >> 31 // all ones for a negative number
	mag := b & 0x7fffffff
	return (mag ^ m) - m
}

// windowArgmax returns the index in in (row stride w) of the window's
// maximum over rows [y0, y1) and columns [x0, x1) (MaxPoolPlane's
// definition). The scan selects by integer keys (orderKey) with masks
// instead of a branch: on random data a branch per element mispredicts
// about half the time. A window whose first element or maximum key is a
// NaN's takes the float scan instead.
func windowArgmax(in []float32, w, y0, y1, x0, x1 int) int32 {
	bi := int32(y0*w + x0)
	first := in[bi]
	bk := orderKey(first)
	for iy := y0; iy < y1; iy++ {
		base := int32(iy * w)
		for ix := x0; ix < x1; ix++ {
			k := orderKey(in[int(base)+ix])
			i := base + int32(ix)
			m := int32((int64(bk) - int64(k)) >> 63) // all ones when k > bk
			bk ^= (bk ^ k) & m
			bi ^= (bi ^ i) & m
		}
	}
	if first == first && in[bi] == in[bi] {
		return bi
	}
	return windowArgmaxFloat(in, w, y0, y1, x0, x1)
}

// windowArgmaxFloat is the definition, by float comparisons.
func windowArgmaxFloat(in []float32, w, y0, y1, x0, x1 int) int32 {
	bi := int32(y0*w + x0)
	best := in[bi]
	for iy := y0; iy < y1; iy++ {
		for ix := x0; ix < x1; ix++ {
			if v := in[iy*w+ix]; v > best {
				best, bi = v, int32(iy*w+ix)
			}
		}
	}
	return bi
}
