package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestWindowArgmaxMatchesDefinition compares the masked integer-key scan
// with the definition (first element, then each later strictly greater
// one) on windows with ties, signed zeros, infinities and NaNs.
func TestWindowArgmaxMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 9))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	negNaN := math.Float32frombits(math.Float32bits(nan) | 1<<31)
	pool := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1, 2.5, -2.5, inf, -inf, nan, negNaN, 1e-40, -1e-40, math.MaxFloat32, -math.MaxFloat32}
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
