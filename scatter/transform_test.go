package scatter

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"slices"
	"testing"

	"dptrain/internal/float16"
	"dptrain/tensor"
)

// dft2Direct is the O((mn)²) definition of the 2-D DFT (unscaled).
func dft2Direct(dst, src []complex128, m, n int, inverse bool) {
	sign := -1.0
	if inverse {
		sign = 1
	}
	for u := 0; u < m; u++ {
		for v := 0; v < n; v++ {
			var acc complex128
			for x := 0; x < m; x++ {
				for y := 0; y < n; y++ {
					ph := sign * 2 * math.Pi * (float64(u*x%m)/float64(m) + float64(v*y%n)/float64(n))
					acc += src[x*n+y] * cmplx.Rect(1, ph)
				}
			}
			dst[u*n+v] = acc
		}
	}
}

func randComplex(r *rand.Rand, n int) []complex128 {
	z := make([]complex128, n)
	for i := range z {
		z[i] = complex(r.NormFloat64(), r.NormFloat64())
	}
	return z
}

func maxAbsDiff(a, b []complex128) float64 {
	var d float64
	for i := range a {
		d = max(d, cmplx.Abs(a[i]-b[i]))
	}
	return d
}

func TestFFTMatchesDFT(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ m, n int }{
		{1, 1}, {1, 2}, {2, 3}, {4, 4}, {5, 7}, {8, 6}, {10, 10}, {12, 9}, {16, 20}, {36, 36}, {40, 40}, {11, 13},
	} {
		for _, inv := range []bool{false, true} {
			x := randComplex(r, tc.m*tc.n)
			orig := append([]complex128(nil), x...)
			want := make([]complex128, len(x))
			dft2Direct(want, x, tc.m, tc.n, inv)
			got := append([]complex128(nil), x...)
			fft2(got, tc.m, tc.n, newFFTPlan(tc.m), newFFTPlan(tc.n), inv, newFFTScratch(tc.m, tc.n))
			if d := maxAbsDiff(got, want); d > 1e-9*float64(tc.m*tc.n) {
				t.Errorf("%dx%d inverse=%v: max |fft−dft| = %g", tc.m, tc.n, inv, d)
			}
			if maxAbsDiff(x, orig) != 0 {
				t.Fatal("dft2Direct modified its input")
			}
		}
	}
}

func TestFFTRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{2, 3, 4, 5, 8, 9, 10, 20, 25, 40, 64, 96} {
		p := newFFTPlan(n)
		x := randComplex(r, n)
		tmp := make([]complex128, MaxRadix)
		y, z := make([]complex128, n), make([]complex128, n)
		p.transform(y, x, 1, false, tmp)
		p.transform(z, y, 1, true, tmp)
		for i := range z {
			z[i] /= complex(float64(n), 0)
		}
		if d := maxAbsDiff(x, z); d > 1e-12*float64(n) {
			t.Errorf("n=%d: round trip error %g", n, d)
		}
	}
}

func TestFFTPlanRejectsLargePrime(t *testing.T) {
	defer func() {
		if _, ok := recover().(*tensor.ShapeError); !ok {
			t.Fatal("no *ShapeError panic for length 67·2")
		}
	}()
	newFFTPlan(134)
}

// Filters: ψ has zero mean (ψ̂(0) = 0), φ̂(0) = π/3.1415 (Kymatio's
// normalisation constant), each ψ peaks at ξ_j·(cos θ, sin θ), and the
// Littlewood–Paley sum |φ̂|² + ½Σ(|ψ̂(ω)|² + |ψ̂(−ω)|²) stays bounded and
// away from 0 on the frequencies the wavelets cover.
func TestScatteringFilters(t *testing.T) {
	for _, tc := range []struct{ h, j, l int }{{32, 2, 8}, {28, 2, 8}, {32, 3, 6}} {
		s := New(1, tc.h, tc.h, tc.j, tc.l)
		m, n := s.mp, s.np
		if got, want := s.phi[0][0], math.Pi/3.1415; math.Abs(got-want) > 1e-6 {
			t.Errorf("h=%d J=%d: φ̂(0) = %.8f, want %.8f", tc.h, tc.j, got, want)
		}
		for _, p := range s.psi {
			f := p.levels[0]
			if math.Abs(f[0]) > 1e-6 {
				t.Errorf("h=%d J=%d ψ(j=%d,θ=%d): ψ̂(0) = %g, want 0 (zero mean)", tc.h, tc.j, p.j, p.theta, f[0])
			}
			// Peak location in (signed) frequency, compared with ξ(cos θ, sin θ).
			best, bi := -1.0, 0
			for i, v := range f {
				if v > best {
					best, bi = v, i
				}
			}
			fu, fv := signedFreq(bi/n, m), signedFreq(bi%n, n)
			theta := float64(int(float64(tc.l)-float64(tc.l)/2-1)-p.theta) * math.Pi / float64(tc.l)
			xi := 3.0 / 4.0 * math.Pi / math.Pow(2, float64(p.j))
			wu, wv := xi*math.Cos(theta)*float64(m)/(2*math.Pi), xi*math.Sin(theta)*float64(n)/(2*math.Pi)
			if math.Hypot(fu-wu, fv-wv) > 1.5 {
				t.Errorf("h=%d ψ(j=%d,θ=%d): peak at (%g,%g), want near (%.2f,%.2f)", tc.h, p.j, p.theta, fu, fv, wu, wv)
			}
		}
		lo, hi := math.Inf(1), 0.0
		for u := 0; u < m; u++ {
			for v := 0; v < n; v++ {
				a := s.phi[0][u*n+v] * s.phi[0][u*n+v]
				neg := ((m-u)%m)*n + (n-v)%n
				for _, p := range s.psi {
					a += 0.5 * (p.levels[0][u*n+v]*p.levels[0][u*n+v] + p.levels[0][neg]*p.levels[0][neg])
				}
				hi = max(hi, a)
				// The finest wavelet's band ends near |ω| = π·3/4·(1+…); check the
				// lower bound inside the disc it covers.
				if r := math.Hypot(2*math.Pi*signedFreq(u, m)/float64(m), 2*math.Pi*signedFreq(v, n)/float64(n)); r < 0.75*math.Pi {
					lo = min(lo, a)
				}
			}
		}
		t.Logf("h=%d J=%d L=%d: Littlewood–Paley sum in [%.4f, %.4f]", tc.h, tc.j, tc.l, lo, hi)
		if hi > 1.001 || lo < 0.5 {
			t.Errorf("h=%d J=%d L=%d: Littlewood–Paley sum in [%.3f, %.3f], want within [0.5, 1.001]", tc.h, tc.j, tc.l, lo, hi)
		}
	}
}

func signedFreq(k, n int) float64 {
	if k > n/2 {
		return float64(k - n)
	}
	return float64(k)
}

func TestScatteringShape(t *testing.T) {
	for _, tc := range []struct{ c, h, w, j, l, k int }{
		{3, 32, 32, 2, 8, 81}, {1, 28, 28, 2, 8, 81}, {2, 16, 24, 2, 4, 25}, {1, 32, 32, 3, 8, 217}, {1, 8, 8, 1, 6, 7},
	} {
		s := New(tc.c, tc.h, tc.w, tc.j, tc.l)
		if Channels(tc.j, tc.l) != tc.k {
			t.Errorf("J=%d L=%d: K=%d, want %d", tc.j, tc.l, Channels(tc.j, tc.l), tc.k)
		}
		x := tensor.New(2, tc.c, tc.h, tc.w)
		r := rand.New(rand.NewPCG(5, 6))
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64())
		}
		y := s.Apply(x)
		want := []int{2, tc.c * tc.k, tc.h >> tc.j, tc.w >> tc.j}
		if !slices.Equal(y.Shape, want) {
			t.Errorf("%+v: output %v, want %v", tc, y.Shape, want)
		}
		if got := s.OutShape(); got != [3]int{want[1], want[2], want[3]} {
			t.Errorf("OutShape %v, want %v", got, want[1:])
		}
		for _, v := range y.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%+v: non-finite output", tc)
			}
		}
	}
}

func TestNewScatteringRejectsBadSizes(t *testing.T) {
	for _, tc := range []struct{ c, h, w, j, l int }{
		{3, 30, 32, 2, 8}, {3, 2, 2, 2, 8}, {0, 32, 32, 2, 8}, {1, 32, 32, 0, 8}, {1, 32, 32, 2, 0},
	} {
		func() {
			defer func() {
				if _, ok := recover().(*tensor.ShapeError); !ok {
					t.Errorf("%+v: no *ShapeError panic", tc)
				}
			}()
			New(tc.c, tc.h, tc.w, tc.j, tc.l)
		}()
	}
}

// A constant image has order-0 coefficients c·φ̂(0) and (zero-mean
// wavelets) order-1 and order-2 coefficients 0; reflect padding keeps it
// constant.
func TestScatteringConstantImage(t *testing.T) {
	s := New(2, 16, 16, 2, 8)
	x := tensor.New(1, 2, 16, 16)
	for i := range x.Data {
		x.Data[i] = 0.7
		if i >= 256 {
			x.Data[i] = -2
		}
	}
	y := s.Apply(x)
	plane := 16
	for c, v := range []float64{0.7, -2} {
		for k := 0; k < 81; k++ {
			want := 0.0
			if k == 0 {
				want = v * math.Pi / 3.1415
			}
			for _, got := range y.Data[(c*81+k)*plane : (c*81+k+1)*plane] {
				if math.Abs(float64(got)-want) > 1e-5 {
					t.Fatalf("channel %d map %d: %g, want %g", c, k, got, want)
				}
			}
		}
	}
}

// Order 0 is a low-pass filter followed by subsampling by 2^J: shifting a
// centred pattern by 2^J pixels shifts the maps by one pixel.
func TestScatteringOrder0TranslationCovariance(t *testing.T) {
	const h = 48
	s := New(1, h, h, 2, 8)
	x := tensor.New(2, 1, h, h)
	for i := 0; i < h; i++ {
		for j := 0; j < h; j++ {
			d2 := float64((i-22)*(i-22) + (j-21)*(j-21))
			v := float32(math.Exp(-d2/20) * (1 + math.Cos(float64(i+2*j))))
			x.Data[i*h+j] = v
			if i+4 < h && j+4 < h {
				x.Data[h*h+(i+4)*h+j+4] = v
			}
		}
	}
	y := s.Apply(x)
	o := h / 4
	var worst, scale float64
	for i := 2; i < o-3; i++ {
		for j := 2; j < o-3; j++ {
			a, b := float64(y.Data[i*o+j]), float64(y.Data[81*o*o+(i+1)*o+j+1])
			worst = max(worst, math.Abs(a-b))
			scale = max(scale, math.Abs(a))
		}
	}
	t.Logf("order 0 after a shift by 4: max difference %g (scale %g)", worst, scale)
	if scale < 0.1 || worst > 1e-5*scale {
		t.Errorf("order 0 after a shift by 4: max difference %g (scale %g)", worst, scale)
	}
}

// The FFT path against a direct computation in space: reflect padding,
// circular convolutions by the spatial filters (inverse DFTs of the
// filters, by the O(n²) definition), modulus, subsampling in space, unpad.
func TestScatteringMatchesDirectConvolution(t *testing.T) {
	for _, tc := range []struct{ h, w, j, l int }{{12, 16, 2, 4}, {8, 8, 2, 3}, {16, 24, 3, 2}} {
		checkScatteringDirect(t, tc.h, tc.w, tc.j, tc.l)
	}
}

func checkScatteringDirect(t *testing.T, h, w, J, L int) {
	s := New(1, h, w, J, L)
	r := rand.New(rand.NewPCG(7, 8))
	x := tensor.New(1, 1, h, w)
	for i := range x.Data {
		x.Data[i] = float32(r.Float64())
	}
	got := s.Apply(x).Data

	mp, np := s.mp, s.np
	pad := make([]complex128, mp*np)
	for i := 0; i < mp; i++ {
		for j := 0; j < np; j++ {
			pad[i*np+j] = complex(float64(x.Data[reflectIndex(i-s.top, h)*w+reflectIndex(j-s.lft, w)]), 0)
		}
	}
	spatial := func(f []float64, m, n int) []complex128 {
		c := make([]complex128, m*n)
		for i, v := range f {
			c[i] = complex(v, 0)
		}
		out := make([]complex128, m*n)
		dft2Direct(out, c, m, n, true)
		for i := range out {
			out[i] /= complex(float64(m*n), 0)
		}
		return out
	}
	conv := func(a, f []complex128, m, n int) []complex128 {
		out := make([]complex128, m*n)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var acc complex128
				for p := 0; p < m; p++ {
					for q := 0; q < n; q++ {
						acc += a[p*n+q] * f[((i-p+m)%m)*n+(j-q+n)%n]
					}
				}
				out[i*n+j] = acc
			}
		}
		return out
	}
	sub := func(a []complex128, m, n, k int) []complex128 {
		out := make([]complex128, (m/k)*(n/k))
		for i := 0; i < m/k; i++ {
			for j := 0; j < n/k; j++ {
				out[i*(n/k)+j] = a[i*k*n+j*k]
			}
		}
		return out
	}
	abs := func(a []complex128) []complex128 {
		out := make([]complex128, len(a))
		for i, v := range a {
			out[i] = complex(cmplx.Abs(v), 0)
		}
		return out
	}
	var want [][]float64
	lowpass := func(u []complex128, res int) {
		m, n := mp>>res, np>>res
		c := sub(conv(u, spatial(s.phi[res], m, n), m, n), m, n, 1<<(J-res))
		mJ, nJ := mp>>J, np>>J
		var out []float64
		for i := 1; i < mJ-1; i++ {
			for j := 1; j < nJ-1; j++ {
				out = append(out, real(c[i*nJ+j]))
			}
		}
		want = append(want, out)
	}
	lowpass(pad, 0)
	var u1s [][]complex128
	for _, p1 := range s.psi {
		u1 := abs(sub(conv(pad, spatial(p1.levels[0], mp, np), mp, np), mp, np, 1<<p1.j))
		u1s = append(u1s, u1)
		lowpass(u1, p1.j)
	}
	for n1, p1 := range s.psi {
		m1, n1c := mp>>p1.j, np>>p1.j
		for _, p2 := range s.psi {
			if p2.j <= p1.j {
				continue
			}
			u2 := abs(sub(conv(u1s[n1], spatial(p2.levels[p1.j], m1, n1c), m1, n1c), m1, n1c, 1<<(p2.j-p1.j)))
			lowpass(u2, p2.j)
		}
	}
	if len(want) != Channels(J, L) {
		t.Fatalf("reference has %d maps, want %d", len(want), Channels(J, L))
	}
	plane := (h >> J) * (w >> J)
	var worst float64
	for k, ref := range want {
		for i, v := range ref {
			worst = max(worst, math.Abs(float64(got[k*plane+i])-v))
		}
	}
	t.Logf("%dx%d J=%d L=%d: max |FFT path − direct convolution| = %g", h, w, J, L, worst)
	if worst > 1e-5 {
		t.Errorf("%dx%d J=%d L=%d: max |FFT path − direct convolution| = %g", h, w, J, L, worst)
	}
}

func TestScatteringDeterministicAndParallel(t *testing.T) {
	s := New(3, 16, 16, 2, 8)
	r := rand.New(rand.NewPCG(9, 10))
	x := tensor.New(5, 3, 16, 16)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	orig := append([]float32(nil), x.Data...)
	all := append([]float32(nil), s.Apply(x).Data...)
	per := len(all) / 5
	for b := 0; b < 5; b++ {
		one := s.Apply(x.Slice0(b, b+1)).Data
		for i, v := range one {
			if v != all[b*per+i] {
				t.Fatalf("example %d differs between batch and single runs", b)
			}
		}
	}
	for i := range orig {
		if orig[i] != x.Data[i] {
			t.Fatal("Forward modified its input")
		}
	}
}

func TestScatteringCache(t *testing.T) {
	fresh := New(3, 16, 16, 2, 8)
	s := New(3, 16, 16, 2, 8)
	per := 3 * 81 * 16
	s.CacheBytes = int64(3 * (2*per + 64)) // room for 3 examples
	r := rand.New(rand.NewPCG(11, 12))
	x := tensor.New(4, 3, 16, 16)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	want := append([]float32(nil), fresh.Apply(x).Data...)
	first := append([]float32(nil), s.Apply(x).Data...)
	if h, m, e := s.CacheStats(); h != 0 || m != 4 || e != 3 {
		t.Errorf("after first pass: hits %d misses %d entries %d, want 0 4 3", h, m, e)
	}
	second := s.Apply(x).Data
	if h, m, _ := s.CacheStats(); h != 3 || m != 5 {
		t.Errorf("after second pass: hits %d misses %d, want 3 5", h, m)
	}
	for i := range want {
		if first[i] != second[i] {
			t.Fatalf("value %d: cached %g, first call %g", i, second[i], first[i])
		}
		if first[i] != float16.ToFloat32(float16.FromFloat32(want[i])) {
			t.Fatalf("value %d: %g is not the float16 rounding of %g", i, first[i], want[i])
		}
	}
	// A second layer of the same configuration shares the memo.
	s2 := New(3, 16, 16, 2, 8)
	s2.CacheBytes = 1
	third := s2.Apply(x).Data
	if h, m, e := s2.CacheStats(); h != 6 || m != 6 || e != 3 {
		t.Errorf("second layer: hits %d misses %d entries %d, want 6 6 3", h, m, e)
	}
	for i := range third {
		if third[i] != first[i] {
			t.Fatalf("value %d: second layer %g, first %g", i, third[i], first[i])
		}
	}
	// A changed pixel is a different example.
	x.Data[0] += 1e-3
	s.Apply(x.Slice0(0, 1))
	if h, _, _ := s.CacheStats(); h != 6 {
		t.Errorf("changed input hit the cache")
	}
}

func BenchmarkScattering(b *testing.B) {
	for _, bs := range []int{1, 64} {
		s := New(3, 32, 32, 2, 8)
		x := tensor.New(bs, 3, 32, 32)
		r := rand.New(rand.NewPCG(1, 1))
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64())
		}
		b.Run(map[int]string{1: "cifar/batch1", 64: "cifar/batch64"}[bs], func(b *testing.B) {
			for b.Loop() {
				s.Apply(x)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*bs), "µs/image")
		})
	}
}
