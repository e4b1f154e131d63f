package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// specialFloats are values that make max pooling's order subtle: ties,
// signed zeros, infinities, NaNs of both signs, subnormals.
func specialFloats() []float32 {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	negNaN := math.Float32frombits(math.Float32bits(nan) | 1<<31)
	return []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1, 2.5, -2.5, inf, -inf, nan, negNaN, 1e-40, -1e-40, math.MaxFloat32, -math.MaxFloat32}
}

// TestWindowArgmaxMatchesDefinition compares the masked integer-key scan
// with the definition (first element, then each later strictly greater
// one) on windows with ties, signed zeros, infinities and NaNs.
func TestWindowArgmaxMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 9))
	pool := specialFloats()
	const w = 5
	in := make([]float32, 4*w)
	for trial := 0; trial < 20000; trial++ {
		for i := range in {
			if r.IntN(3) == 0 {
				in[i] = float32(r.NormFloat64())
			} else {
				in[i] = pool[r.IntN(len(pool))]
			}
		}
		y0, x0 := r.IntN(4), r.IntN(w)
		y1, x1 := y0+1+r.IntN(4-y0), x0+1+r.IntN(w-x0)
		want := int32(y0*w + x0)
		best := in[want]
		for iy := y0; iy < y1; iy++ {
			for ix := x0; ix < x1; ix++ {
				if v := in[iy*w+ix]; v > best {
					best, want = v, int32(iy*w+ix)
				}
			}
		}
		if got := windowArgmax(in, w, y0, y1, x0, x1); got != want {
			t.Fatalf("window rows [%d,%d) cols [%d,%d) of %v: index %d, want %d", y0, y1, x0, x1, in, got, want)
		}
	}
}

// TestMaxPoolPlaneMatchesDefinition: MaxPoolPlane (the C kernel where cgo
// has one) and the Go loop give the definition's index and value for every
// output, on planes with special values and on random ones, for windows
// wider than the padding, windows that fall in the padding, strides above
// the window, and planes narrower than the window. The planes: normal
// values; half special values (NaNs throughout); special values without
// NaN (ties, signed zeros, infinities: the overlapping strided kernel's
// float comparisons); normal values with one NaN in the last row (that
// kernel finds it after the other rows are done and starts over).
func TestMaxPoolPlaneMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 11))
	pool := specialFloats()
	for _, tc := range []struct{ h, w, k, s, pad int }{
		{112, 112, 3, 2, 1}, {32, 32, 2, 2, 0}, {7, 9, 3, 1, 1}, {5, 5, 3, 3, 2}, {1, 1, 1, 1, 0}, {3, 2, 4, 1, 3},
		{17, 40, 5, 2, 2}, {8, 8, 2, 3, 1}, {3, 50, 3, 1, 0}, {2, 50, 3, 1, 0}, {6, 6, 6, 1, 0},
		{56, 56, 3, 2, 1}, {4, 4, 3, 2, 1}, {9, 13, 3, 2, 0}, {7, 7, 4, 3, 2}, {3, 3, 5, 2, 2}, {6, 5, 3, 2, 3}, {11, 12, 5, 3, 4}, {2, 9, 3, 2, 1},
	} {
		var noNaN []float32
		for _, v := range pool {
			if v == v {
				noNaN = append(noNaN, v)
			}
		}
		for _, mode := range []string{"normal", "special", "special-no-nan", "one-nan"} {
			t.Run(fmt.Sprintf("%dx%d-k%d-s%d-p%d-%s", tc.h, tc.w, tc.k, tc.s, tc.pad, mode), func(t *testing.T) {
				in := make([]float32, tc.h*tc.w)
				for i := range in {
					switch {
					case mode == "special" && r.IntN(2) == 0:
						in[i] = pool[r.IntN(len(pool))]
					case mode == "special-no-nan" && r.IntN(4) != 0:
						in[i] = noNaN[r.IntN(len(noNaN))]
					default:
						in[i] = float32(r.NormFloat64())
					}
				}
				if mode == "one-nan" {
					in[(tc.h-1)*tc.w+r.IntN(tc.w)] = float32(math.NaN())
				}
				in0 := slices.Clone(in)
				oh, ow := max(0, ConvOut(tc.h, tc.k, tc.s, tc.pad)), max(0, ConvOut(tc.w, tc.k, tc.s, tc.pad))
				out, arg := make([]float32, oh*ow), make([]int32, oh*ow)
				gout, garg := make([]float32, oh*ow), make([]int32, oh*ow)
				MaxPoolPlane(out, arg, in, tc.h, tc.w, tc.k, tc.s, tc.pad)
				maxPoolPlaneGo(gout, garg, in, tc.h, tc.w, oh, ow, tc.k, tc.s, tc.pad)
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						o := oy*ow + ox
						y0, x0 := max(0, oy*tc.s-tc.pad), max(0, ox*tc.s-tc.pad)
						y1, x1 := min(tc.h, oy*tc.s-tc.pad+tc.k), min(tc.w, ox*tc.s-tc.pad+tc.k)
						want := int32(-1)
						if y0 < y1 && x0 < x1 {
							want = windowArgmaxFloat(in, tc.w, y0, y1, x0, x1)
						}
						for name, got := range map[string][2]any{"kernel": {arg[o], out[o]}, "go": {garg[o], gout[o]}} {
							gi, gv := got[0].(int32), got[1].(float32)
							wv := float32(math.Inf(-1))
							if want >= 0 {
								wv = in[want]
							}
							if gi != want || math.Float32bits(gv) != math.Float32bits(wv) {
								t.Fatalf("%s: output (%d,%d): index %d value %v, want %d %v", name, oy, ox, gi, gv, want, wv)
							}
						}
					}
				}
				if !slices.Equal(math32bits(in), math32bits(in0)) {
					t.Fatal("MaxPoolPlane modified its input")
				}
			})
		}
	}
}

func math32bits(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, f := range v {
		out[i] = math.Float32bits(f)
	}
	return out
}
