package tensor

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func relErr(got float32, want float64) float64 {
	if want == 0 {
		return math.Abs(float64(got))
	}
	return math.Abs(float64(got)-want) / math.Abs(want)
}

// TestTanhAccuracy compares Tanh with math.Tanh on every 61st float32 in
// [0, 10] (every 977th with -short), a log-spaced grid down to the smallest
// subnormal, large and special values; tanh is odd, so −x is checked too.
func TestTanhAccuracy(t *testing.T) {
	const bound = 2.5e-7
	step := uint32(61)
	if testing.Short() {
		step = 977
	}
	var xs []float32
	for b := uint32(0); b <= math.Float32bits(10); b += step {
		xs = append(xs, math.Float32frombits(b))
	}
	for e := -150.0; e <= 2; e += 0.01 {
		xs = append(xs, float32(math.Pow(2, e)))
	}
	xs = append(xs, 9, 9.01, 9.02, 15, 88, 1e30, math.MaxFloat32, math.SmallestNonzeroFloat32, 0.5, 0.3466, 0.3467, 1e-4)
	worst, worstX := 0.0, float32(0)
	for _, x := range xs {
		for _, v := range []float32{x, -x} {
			got := make([]float32, 1)
			Tanh(got, []float32{v})
			e := relErr(got[0], math.Tanh(float64(v)))
			if e > worst {
				worst, worstX = e, v
			}
			if e > bound || math.Signbit(float64(got[0])) != math.Signbit(float64(v)) {
				t.Fatalf("Tanh(%g) = %g, math.Tanh = %g (relative error %.3g > %g or sign differs)", v, got[0], math.Tanh(float64(v)), e, bound)
			}
		}
	}
	t.Logf("max relative error %.3g at x = %g over %d points", worst, worstX, 2*len(xs))
	special := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	got := make([]float32, 3)
	Tanh(got, special)
	if got[0] != 1 || got[1] != -1 || !math.IsNaN(float64(got[2])) {
		t.Fatalf("Tanh(+Inf, −Inf, NaN) = %v, want [1 −1 NaN]", got)
	}
}

func TestTanhInPlace(t *testing.T) {
	x := []float32{-3, -0.25, 0, 0.25, 3}
	want := make([]float32, len(x))
	Tanh(want, x)
	Tanh(x, x)
	for i := range x {
		if x[i] != want[i] {
			t.Fatalf("in place: %v, want %v", x, want)
		}
	}
}

func TestReLUMask(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	for _, tc := range []struct {
		y    float32
		pass bool
	}{
		{1, true}, {1e-45, true}, {math.MaxFloat32, true}, {inf, true},
		{0, false}, {negZero, false}, {-1e-45, false}, {-2, false}, {-inf, false}, {nan, false},
	} {
		for _, g := range []float32{0.75, -3, inf, negZero} {
			dst := []float32{42}
			ReLUMask(dst, []float32{g}, []float32{tc.y})
			want := float32(0)
			if tc.pass {
				want = g
			}
			if math.Float32bits(dst[0]) != math.Float32bits(want) {
				t.Fatalf("ReLUMask(dy=%g, y=%g) = %g, want %g", g, tc.y, dst[0], want)
			}
		}
	}
}

func TestReductions(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{0, 1, 3, 255, 256, 257, 1023, 4096, 100003} {
		x, dy := randSlice(r, n), randSlice(r, n)
		for i := range x {
			x[i] = 3 + 2*x[i] // mean far from 0, like un-normalised activations
		}
		m := float32(2.9)
		var s, abs, c1, c2, c2abs, d1, d2, d2abs float64
		for i, v := range x {
			s += float64(v)
			abs += math.Abs(float64(v))
			d := float64(v) - float64(m)
			c1 += d
			c2 += d * d
			c2abs += d * d
			d1 += float64(dy[i])
			d2 += float64(dy[i]) * d
			d2abs += math.Abs(float64(dy[i]) * d)
		}
		const tol = 2e-6 // relative to the sum of magnitudes
		check := func(name string, got, want, scale float64) {
			t.Helper()
			if math.Abs(got-want) > tol*(scale+1e-30) {
				t.Fatalf("n=%d: %s = %.9g, want %.9g (scale %g)", n, name, got, want, scale)
			}
		}
		check("Sum", Sum(x), s, abs)
		g1, g2 := CenteredMoments(x, m)
		check("CenteredMoments.s1", g1, c1, abs)
		check("CenteredMoments.s2", g2, c2, c2abs)
		e1, e2 := CenteredDots(dy, x, m)
		var dabs float64
		for _, v := range dy {
			dabs += math.Abs(float64(v))
		}
		check("CenteredDots.sdy", e1, d1, dabs)
		check("CenteredDots.sdyx", e2, d2, d2abs)
	}
}

// TestMaps checks the elementwise maps against their definitions, in place
// where allowed.
func TestMaps(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	n := 1000
	a, b, c := randSlice(r, n), randSlice(r, n), randSlice(r, n)
	const m, sa, sb, sc = 0.25, 1.5, -0.75, 0.125
	for _, tc := range []struct {
		name string
		run  func(dst []float32)
		want func(i int) float32
	}{
		{"Affine", func(d []float32) { Affine(d, a, m, sa, sb) }, func(i int) float32 { return (a[i]-m)*sa + sb }},
		{"Combine", func(d []float32) { Combine(d, a, b, m, sa, sb, sc) }, func(i int) float32 { return sa*a[i] + sb*(b[i]-m) + sc }},
		{"ReLU", func(d []float32) { ReLU(d, a) }, func(i int) float32 { return float32(math.Max(float64(a[i]), 0)) }},
		{"Add", func(d []float32) { Add(d, a, b) }, func(i int) float32 { return a[i] + b[i] }},
		{"AddReLU", func(d []float32) { AddReLU(d, a, b) }, func(i int) float32 { return float32(math.Max(float64(a[i]+b[i]), 0)) }},
		{"TanhBackward", func(d []float32) { TanhBackward(d, a, c) }, func(i int) float32 { return a[i] * (1 - c[i]*c[i]) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a0, b0, c0 := append([]float32(nil), a...), append([]float32(nil), b...), append([]float32(nil), c...)
			dst := make([]float32, n)
			tc.run(dst)
			for i := range dst {
				if dst[i] != tc.want(i) {
					t.Fatalf("dst[%d] = %g, want %g", i, dst[i], tc.want(i))
				}
			}
			for i := range a {
				if a[i] != a0[i] || b[i] != b0[i] || c[i] != c0[i] {
					t.Fatalf("input modified at %d", i)
				}
			}
		})
	}
	// in place: dst aliases the first input.
	x := append([]float32(nil), a...)
	AddReLU(x, x, b)
	for i := range x {
		if want := float32(math.Max(float64(a[i]+b[i]), 0)); x[i] != want {
			t.Fatalf("AddReLU in place: [%d] = %g, want %g", i, x[i], want)
		}
	}
}

func TestElementwisePanicsOnLengthMismatch(t *testing.T) {
	s3, s4 := make([]float32, 3), make([]float32, 4)
	for name, f := range map[string]func(){
		"ReLU":         func() { ReLU(s3, s4) },
		"ReLUMask":     func() { ReLUMask(s3, s3, s4) },
		"Add":          func() { Add(s3, s4, s3) },
		"AddReLU":      func() { AddReLU(s3, s3, s4) },
		"Tanh":         func() { Tanh(s4, s3) },
		"TanhBackward": func() { TanhBackward(s3, s3, s4) },
		"Affine":       func() { Affine(s3, s4, 0, 1, 0) },
		"Combine":      func() { Combine(s3, s3, s4, 0, 1, 1, 0) },
		"CenteredDots": func() { CenteredDots(s3, s4, 0) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if _, ok := recover().(*ShapeError); !ok {
					t.Fatal("no *ShapeError panic")
				}
			}()
			f()
		})
	}
}

// BenchmarkElementwise reports GB/s of the first input on 1 Mi floats
// (4 MiB, about L2-sized; the shapes of a layer are split into such pieces by
// ParallelFor), against the straightforward loops they replace.
func BenchmarkElementwise(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	n := 1 << 20
	x, y, dst := randSlice(r, n), randSlice(r, n), make([]float32, n)
	for _, k := range []struct {
		name string
		f    func()
	}{
		{"Tanh", func() { Tanh(dst, x) }},
		{"Tanh-math.Tanh", func() {
			for i, v := range x {
				dst[i] = float32(math.Tanh(float64(v)))
			}
		}},
		{"ReLUMask", func() { ReLUMask(dst, x, y) }},
		{"ReLUMask-branch", func() {
			for i, g := range x {
				if y[i] > 0 {
					dst[i] = g
				} else {
					dst[i] = 0
				}
			}
		}},
		{"Sum", func() { Sum(x) }},
		{"Sum-float64-chain", func() {
			var s float64
			for _, v := range x {
				s += float64(v)
			}
			_ = s
		}},
		{"CenteredMoments", func() { CenteredMoments(x, 0.5) }},
		{"CenteredDots", func() { CenteredDots(x, y, 0.5) }},
		{"Affine", func() { Affine(dst, x, 0.5, 2, 1) }},
		{"Combine", func() { Combine(dst, x, y, 0.5, 2, 1, 3) }},
		{"AddReLU", func() { AddReLU(dst, x, y) }},
		{"TanhBackward", func() { TanhBackward(dst, x, y) }},
	} {
		b.Run(fmt.Sprintf("%s/n=%d", k.name, n), func(b *testing.B) {
			b.SetBytes(int64(4 * n))
			for i := 0; i < b.N; i++ {
				k.f()
			}
		})
	}
}

// wsGhostCase is random input for WSGhostRowSums with padded strides.
func wsGhostCase(r *rand.Rand, p, k, t int, bias bool, special bool) WSGhostInput {
	kt := k * t
	in := WSGhostInput{LDY: kt + 3, ZSeg: p*t + 5, P: p, K: k, T: t, ZAbs: 3e-40, CY: 6e-8, CZ: 1.1e-16}
	f32 := func(n int) []float32 {
		if special {
			return specialSlice(r, n)
		}
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64() * math.Exp(2*r.NormFloat64()))
		}
		return s
	}
	in.DY = f32((p-1)*in.LDY + kt)
	in.Z = f32((k-1)*in.ZSeg + p*t)
	f64 := func(n int, pos bool) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = r.NormFloat64() * math.Exp(r.NormFloat64())
			if pos {
				s[i] = math.Abs(s[i])
			}
		}
		return s
	}
	in.ColSum, in.ColAbs, in.Alpha, in.Scale = f64(kt, false), f64(kt, true), f64(kt, true), f64(p, true)
	if bias {
		in.Bias = f32(p)
	}
	return in
}

// TestWSGhostRowSumsWithinGamma: each of WSGhostRowSums' six sums is within
// γ⁶⁴_{kt} times the magnitude sum of its terms of the exact sum (math/big)
// of those terms, each term rounded once as the doc says (the error
// wsCorrection's bound assumes, for any order of the additions).
func TestWSGhostRowSumsWithinGamma(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 17))
	u := math.Ldexp(1, -53)
	for _, c := range []struct{ p, k, t int }{{1, 1, 1}, {3, 1, 7}, {5, 2, 16}, {4, 3, 33}, {17, 1, 64}, {2, 1, 1024}} {
		for _, bias := range []bool{false, true} {
			in := wsGhostCase(r, c.p, c.k, c.t, bias, false)
			got := make([]WSGhostSums, c.p)
			WSGhostRowSums(got, in)
			goLoop := make([]WSGhostSums, c.p)
			wsGhostRowSumsGo(goLoop, &in)
			n := c.k * c.t
			gamma := float64(n) * u / (1 - float64(n)*u)
			for o := 0; o < c.p; o++ {
				var b float64
				if bias {
					b = float64(in.Bias[o])
				}
				var sums, mags [6]big.Float
				for i := range sums {
					sums[i].SetPrec(2000)
					mags[i].SetPrec(2000)
				}
				for a := 0; a < c.k; a++ {
					for q := 0; q < c.t; q++ {
						s := a*c.t + q
						g := float64(in.DY[o*in.LDY+s])
						y := float64(in.Z[a*in.ZSeg+o*c.t+q])
						zd := y - b
						ez := in.Scale[o]*in.Alpha[s] + in.ZAbs
						if bias {
							ez += in.CY * math.Abs(y)
							ez += in.CZ * math.Abs(zd)
						}
						terms := [6]float64{g * in.ColSum[s], math.Abs(g * in.ColSum[s]), math.Abs(g) * in.ColAbs[s],
							g * zd, math.Abs(g * zd), math.Abs(g) * ez}
						for i, v := range terms {
							sums[i].Add(&sums[i], new(big.Float).SetFloat64(v))
							mags[i].Add(&mags[i], new(big.Float).SetFloat64(math.Abs(v)))
						}
					}
				}
				for _, res := range []WSGhostSums{got[o], goLoop[o]} {
					vals := [6]float64{res.Sig, res.SigAbs, res.SigErr, res.Rho, res.RhoAbs, res.RhoErr}
					for i, v := range vals {
						want, _ := sums[i].Float64()
						mag, _ := mags[i].Float64()
						if math.Abs(v-want) > gamma*mag {
							t.Fatalf("p=%d k=%d t=%d bias=%v row %d sum %d: %v, exact %v: error above γ⁶⁴_%d·%v", c.p, c.k, c.t, bias, o, i, v, want, n, mag)
						}
					}
				}
			}
		}
	}
}

func TestWSGhostRowSumsShapePanics(t *testing.T) {
	in := wsGhostCase(rand.New(rand.NewPCG(1, 2)), 3, 2, 8, true, false)
	for name, f := range map[string]func(){
		"short dst": func() { WSGhostRowSums(make([]WSGhostSums, 2), in) },
		"short z": func() {
			bad := in
			bad.Z = bad.Z[:len(bad.Z)-1]
			WSGhostRowSums(make([]WSGhostSums, 3), bad)
		},
		"ldy below kt": func() {
			bad := in
			bad.LDY = 15
			WSGhostRowSums(make([]WSGhostSums, 3), bad)
		},
		"short bias": func() {
			bad := in
			bad.Bias = bad.Bias[:2]
			WSGhostRowSums(make([]WSGhostSums, 3), bad)
		},
	} {
		func() {
			defer func() {
				if _, ok := recover().(*ShapeError); !ok {
					t.Fatalf("%s: no *ShapeError panic", name)
				}
			}()
			f()
		}()
	}
}
