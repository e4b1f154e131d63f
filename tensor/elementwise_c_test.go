package tensor

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// specialSlice returns n floats mixing normal values with NaNs of both
// signs, infinities, signed zeros and subnormals.
func specialSlice(r *rand.Rand, n int) []float32 {
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), math.Float32frombits(0xffc00001), 1e-45, -1e-45, 1e-39, math.MaxFloat32, -math.MaxFloat32}
	s := make([]float32, n)
	for i := range s {
		if r.IntN(4) == 0 {
			s[i] = special[r.IntN(len(special))]
		} else {
			s[i] = float32(r.NormFloat64() * math.Exp(4*r.NormFloat64()))
		}
	}
	return s
}

// inPieces runs f on pieces shorter than cKernelMin (the Go loops) and
// returns the result.
func inPieces(n int, f func(lo, hi int)) {
	const piece = 100
	for lo := 0; lo < n; lo += piece {
		f(lo, min(n, lo+piece))
	}
}

// requireSameBits fails unless got and want have the same bits, every NaN
// counting as every other: which NaN operand an x86 instruction passes on
// depends on the operand order the compiler chose, so NaN payloads may
// differ between the C and Go loops (nothing reads them: a non-finite
// example is clipped to nothing).
func requireSameBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i := range want {
		if got[i] != got[i] && want[i] != want[i] {
			continue
		}
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d is %v (%#x) on the long path, %v (%#x) on the short one", name, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// TestElementwiseCMatchesGo: each kernel gives the same bits on slices long
// enough for its vectorised C version as on short pieces (the Go loop), on
// data with NaNs, infinities, signed zeros and subnormals, and in place
// where the doc allows aliasing.
func TestElementwiseCMatchesGo(t *testing.T) {
	if !haveCKernels {
		t.Skip("no C kernels in this build")
	}
	r := rand.New(rand.NewPCG(8, 8))
	const n = 4099
	a, b, c := specialSlice(r, n), specialSlice(r, n), specialSlice(r, n)
	long, short := make([]float32, n), make([]float32, n)
	run := func(name string, f func(dst []float32, lo, hi int)) {
		t.Helper()
		f(long, 0, n)
		inPieces(n, func(lo, hi int) { f(short[lo:hi], lo, hi) })
		requireSameBits(t, name, long, short)
	}
	run("ReLU", func(d []float32, lo, hi int) { ReLU(d, a[lo:hi]) })
	run("ReLUMask", func(d []float32, lo, hi int) { ReLUMask(d, a[lo:hi], b[lo:hi]) })
	run("Add", func(d []float32, lo, hi int) { Add(d, a[lo:hi], b[lo:hi]) })
	run("AddReLU", func(d []float32, lo, hi int) { AddReLU(d, a[lo:hi], b[lo:hi]) })
	run("TanhBackward", func(d []float32, lo, hi int) { TanhBackward(d, a[lo:hi], b[lo:hi]) })
	// Tanh on finite data of every magnitude (NaN payloads aside, the
	// special values are in a too), in place as well.
	ta := randSlice(r, n)
	for i := range ta {
		ta[i] *= float32(math.Exp(2 * r.NormFloat64()))
	}
	run("Tanh", func(d []float32, lo, hi int) { Tanh(d, a[lo:hi]) })
	run("Tanh (finite)", func(d []float32, lo, hi int) { Tanh(d, ta[lo:hi]) })
	run("Tanh (in place)", func(d []float32, lo, hi int) { copy(d, ta[lo:hi]); Tanh(d, d) })
	for _, p := range [][4]float32{{0, 1, 0, 0}, {0.37, -2.5, 1e-3, 7}, {-1e20, 3e-20, 1e30, -0.5}} {
		run("Affine", func(d []float32, lo, hi int) { Affine(d, a[lo:hi], p[0], p[1], p[2]) })
		run("Combine", func(d []float32, lo, hi int) { Combine(d, a[lo:hi], c[lo:hi], p[0], p[1], p[2], p[3]) })
	}
	// Reductions: the same float64 results from the C and Go loops, on
	// finite data of mixed magnitudes (one NaN would make every sum NaN).
	fa, fc := randSlice(r, n), randSlice(r, n)
	for i := range fa {
		fa[i] *= float32(math.Exp(3 * r.NormFloat64()))
	}
	for _, m := range []float32{0, 0.5, -3e3} {
		for _, k := range []int{1, 15, 16, 17, 255, 256, 257, 271, 527, 1000, n} {
			x, y := fa[:k], fc[:k]
			s1, s2 := CenteredMoments(x, m)
			g1, g2 := centeredMomentsGo(x, m)
			d1, d2 := CenteredDots(x, y, m)
			h1, h2 := centeredDotsGo(x, y, m)
			for _, q := range []struct {
				what      string
				got, want float64
			}{{"Sum", Sum(x), sumGo(x)}, {"CenteredMoments s1", s1, g1}, {"CenteredMoments s2", s2, g2}, {"CenteredDots Σdy", d1, h1}, {"CenteredDots Σdy·(x−m)", d2, h2}} {
				if math.Float64bits(q.got) != math.Float64bits(q.want) && !(q.got != q.got && q.want != q.want) {
					t.Fatalf("%s over %d elements, m = %g: %v, Go loop %v", q.what, k, m, q.got, q.want)
				}
			}
		}
	}
	for _, k := range []int{1, 15, 16, 17, 256, 300, 527, n} {
		if got, want := SumSquares(fa[:k]), sumSquaresGo(fa[:k]); math.Float64bits(got) != math.Float64bits(want) && !(got != got && want != want) {
			t.Fatalf("SumSquares over %d elements: %v, Go loop %v", k, got, want)
		}
	}
	// WSRow on finite rows (one NaN makes a whole row NaN).
	fg, fw, fd := randSlice(r, n), randSlice(r, n), randSlice(r, n)
	for _, add := range []bool{false, true} {
		for _, k := range []int{1, 17, 300, n} {
			d1, d2 := append([]float32(nil), fd[:k]...), append([]float32(nil), fd[:k]...)
			WSRow(d1, fg[:k], fw[:k], 0.731, add)
			wsRowGo(d2, fg[:k], fw[:k], 0.731, add)
			requireSameBits(t, fmt.Sprintf("WSRow(add=%v) over %d", add, k), d1, d2)
		}
	}
	// WSRowStats: the same five sums from the C and Go loops (mixed signs
	// and magnitudes, so that every sum rounds and the |·| sums differ).
	for _, k := range []int{1, 15, 16, 17, 255, 256, 257, 300, 1152, n} {
		got, want := WSRowStats(fa[:k], fg[:k]), wsRowStatsGo(fa[:k], fg[:k])
		for _, q := range []struct {
			what      string
			got, want float64
		}{{"Σg²", got.SumSq, want.SumSq}, {"Σg", got.Sum, want.Sum}, {"Σ|g|", got.SumAbs, want.SumAbs}, {"Σg·w", got.Dot, want.Dot}, {"Σ|g·w|", got.DotAbs, want.DotAbs}} {
			if math.Float64bits(q.got) != math.Float64bits(q.want) {
				t.Fatalf("WSRowStats %s over %d elements: %v, Go loop %v", q.what, k, q.got, q.want)
			}
		}
	}
	// WSGhostRowSums: the same six sums per row from the C and Go loops, on
	// data with special values, every tail length and several segments.
	for _, sh := range []struct{ p, k, t int }{{1, 1, 256}, {3, 1, 100}, {16, 1, 64}, {5, 2, 33}, {4, 3, 256}, {2, 1, 1024}, {300, 1, 1}} {
		for _, bias := range []bool{false, true} {
			for _, special := range []bool{false, true} {
				in := wsGhostCase(r, sh.p, sh.k, sh.t, bias, special)
				got, want := make([]WSGhostSums, sh.p), make([]WSGhostSums, sh.p)
				WSGhostRowSums(got, in)
				wsGhostRowSumsGo(want, &in)
				for o := range got {
					g, w := got[o], want[o]
					gv := [6]float64{g.Sig, g.SigAbs, g.SigErr, g.Rho, g.RhoAbs, g.RhoErr}
					wv := [6]float64{w.Sig, w.SigAbs, w.SigErr, w.Rho, w.RhoAbs, w.RhoErr}
					for i := range gv {
						if gv[i] != gv[i] && wv[i] != wv[i] {
							continue
						}
						if math.Float64bits(gv[i]) != math.Float64bits(wv[i]) {
							t.Fatalf("WSGhostRowSums p=%d k=%d t=%d bias=%v special=%v row %d sum %d: %v, Go loop %v", sh.p, sh.k, sh.t, bias, special, o, i, gv[i], wv[i])
						}
					}
				}
			}
		}
	}
	run("Axpy", func(d []float32, lo, hi int) { copy(d, c[lo:hi]); Axpy(d, 0.37, a[lo:hi]) })
	// In place: dst aliasing an input.
	inPlace := func(name string, f func(dst, x []float32, lo int)) {
		t.Helper()
		x1, x2 := append([]float32(nil), a...), append([]float32(nil), a...)
		f(x1, x1, 0)
		inPieces(n, func(lo, hi int) { f(x2[lo:hi], x2[lo:hi], lo) })
		requireSameBits(t, name+" in place", x1, x2)
	}
	inPlace("ReLU", func(d, x []float32, _ int) { ReLU(d, x) })
	inPlace("Add", func(d, x []float32, lo int) { Add(d, x, b[lo:lo+len(x)]) })
	inPlace("Affine", func(d, x []float32, _ int) { Affine(d, x, 0.25, 3, -1) })
}

// TestSumSquaresWithinGamma: the float64 sum of squares, in whatever order
// of chains, is within γ⁶⁴_n of the exact sum (math/big), the bound the
// per-example norm bounds (nn.SumSquaresBound) take for any order.
func TestSumSquaresWithinGamma(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	for _, n := range []int{1, 16, 100, 4096, 100000} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(r.NormFloat64() * math.Exp(3*r.NormFloat64()))
		}
		exact := new(big.Float).SetPrec(2000)
		for _, v := range x {
			f := new(big.Float).SetPrec(2000).SetFloat64(float64(v))
			exact.Add(exact, f.Mul(f, f))
		}
		e, _ := exact.Float64()
		u := math.Ldexp(1, -53)
		gamma := float64(n) * u / (1 - float64(n)*u)
		for _, got := range []float64{SumSquares(x), sumSquaresGo(x)} {
			if math.Abs(got-e) > gamma*e {
				t.Fatalf("n = %d: sum of squares %v, exact %v: error above γ⁶⁴_n", n, got, e)
			}
		}
	}
}

// TestWSRowStatsWithinGamma: each of WSRowStats' sums is within γ⁶⁴_n of
// the exact sum (math/big) of its terms times the sum of their magnitudes,
// the error the stored rule's WS norm bound (nn.storedWSSq) assumes for any
// order of the additions; the magnitude sums are within γ⁶⁴_n of theirs.
func TestWSRowStatsWithinGamma(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 15))
	u := math.Ldexp(1, -53)
	for _, n := range []int{1, 17, 1152, 4096, 100000} {
		g, w := make([]float32, n), make([]float32, n)
		for i := range g {
			g[i] = float32(r.NormFloat64() * math.Exp(3*r.NormFloat64()))
			w[i] = float32(r.NormFloat64())
		}
		var sq, sum, sabs, dot, dabs big.Float
		for _, z := range []*big.Float{&sq, &sum, &sabs, &dot, &dabs} {
			z.SetPrec(2000)
		}
		for i := range g {
			gv := new(big.Float).SetPrec(2000).SetFloat64(float64(g[i]))
			pv := new(big.Float).SetPrec(2000).SetFloat64(float64(w[i]))
			pv.Mul(pv, gv)
			sum.Add(&sum, gv)
			sabs.Add(&sabs, new(big.Float).Abs(gv))
			dot.Add(&dot, pv)
			dabs.Add(&dabs, new(big.Float).Abs(pv))
			sq.Add(&sq, gv.Mul(gv, gv))
		}
		f := func(z *big.Float) float64 { v, _ := z.Float64(); return v }
		gamma := float64(n) * u / (1 - float64(n)*u)
		for _, got := range []WSStats{WSRowStats(g, w), wsRowStatsGo(g, w)} {
			for _, q := range []struct {
				what           string
				got, want, mag float64
			}{
				{"Σg²", got.SumSq, f(&sq), f(&sq)}, {"Σg", got.Sum, f(&sum), f(&sabs)}, {"Σ|g|", got.SumAbs, f(&sabs), f(&sabs)},
				{"Σg·w", got.Dot, f(&dot), f(&dabs)}, {"Σ|g·w|", got.DotAbs, f(&dabs), f(&dabs)},
			} {
				if math.Abs(q.got-q.want) > gamma*q.mag {
					t.Fatalf("n = %d: %s = %v, exact %v: error above γ⁶⁴_n·%v", n, q.what, q.got, q.want, q.mag)
				}
			}
		}
	}
}
