package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func TestSgemmMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ m, n, k int }{{1, 1, 1}, {3, 5, 7}, {17, 33, 9}, {64, 31, 128}, {5, 200, 3}, {70, 90, 60}, {30, 200, 50}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				lda, ldb := tc.k+1, tc.n+2
				if ta {
					lda = tc.m + 1
				}
				if tb {
					ldb = tc.k + 2
				}
				arows, brows := tc.m, tc.k
				if ta {
					arows = tc.k
				}
				if tb {
					brows = tc.n
				}
				a := randSlice(r, arows*lda)
				b := randSlice(r, brows*ldb)
				c0 := randSlice(r, tc.m*(tc.n+3))
				got := append([]float32(nil), c0...)
				want := append([]float32(nil), c0...)
				Sgemm(ta, tb, tc.m, tc.n, tc.k, 0.7, a, lda, b, ldb, 0.3, got, tc.n+3)
				SgemmNaive(ta, tb, tc.m, tc.n, tc.k, 0.7, a, lda, b, ldb, 0.3, want, tc.n+3)
				for i := range got {
					if math.Abs(float64(got[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
						t.Fatalf("%v ta=%v tb=%v: c[%d]=%g want %g", tc, ta, tb, i, got[i], want[i])
					}
				}
			}
		}
	}
}

func TestIm2colAdjoint(t *testing.T) {
	// <Im2col(x), y> == <x, Col2im(y)> for random x, y: Col2im is the adjoint.
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct{ c, h, w, k, s, p int }{{1, 5, 5, 3, 1, 1}, {2, 7, 6, 3, 2, 1}, {3, 9, 9, 7, 2, 3}, {2, 4, 5, 1, 1, 0}, {1, 6, 6, 4, 2, 0}, {2, 5, 5, 8, 2, 3}} {
		oh, ow := ConvOut(tc.h, tc.k, tc.s, tc.p), ConvOut(tc.w, tc.k, tc.s, tc.p)
		x := randSlice(r, tc.c*tc.h*tc.w)
		y := randSlice(r, tc.c*tc.k*tc.k*oh*ow)
		col := make([]float32, len(y))
		Im2col(col, x, tc.c, tc.h, tc.w, tc.k, tc.k, tc.s, tc.p)
		dx := make([]float32, len(x))
		Col2im(dx, y, tc.c, tc.h, tc.w, tc.k, tc.k, tc.s, tc.p)
		var l, rr float64
		for i := range col {
			l += float64(col[i]) * float64(y[i])
		}
		for i := range x {
			rr += float64(x[i]) * float64(dx[i])
		}
		if math.Abs(l-rr) > 1e-3*(1+math.Abs(l)) {
			t.Fatalf("%+v: <im2col x, y>=%g, <x, col2im y>=%g", tc, l, rr)
		}
		// direct check of one entry against the definition
		for row := 0; row < tc.c*tc.k*tc.k; row++ {
			ci, ki, kj := row/(tc.k*tc.k), row/tc.k%tc.k, row%tc.k
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					iy, ix := oy*tc.s+ki-tc.p, ox*tc.s+kj-tc.p
					var want float32
					if iy >= 0 && iy < tc.h && ix >= 0 && ix < tc.w {
						want = x[(ci*tc.h+iy)*tc.w+ix]
					}
					if got := col[row*oh*ow+oy*ow+ox]; got != want {
						t.Fatalf("%+v: col[%d,%d,%d]=%g want %g", tc, row, oy, ox, got, want)
					}
				}
			}
		}
	}
}
