package accounting

import (
	"math"
	"math/rand/v2"
	"testing"
)

// naiveConvolve is the O(nm) reference.
func naiveConvolve(a, b []float64) []float64 {
	out := make([]float64, len(a)+len(b)-1)
	for i, x := range a {
		for j, y := range b {
			out[i+j] += x * y
		}
	}
	return out
}

func TestConvolveMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sz := range [][2]int{{1, 1}, {2, 3}, {200, 300}, {1000, 17}, {4097, 513}, {3, 9000}} {
		a := make([]float64, sz[0])
		b := make([]float64, sz[1])
		for i := range a {
			a[i] = rng.Float64()
		}
		for i := range b {
			b[i] = rng.Float64()
		}
		got, want := convolve(a, b), naiveConvolve(a, b)
		if len(got) != len(want) {
			t.Fatalf("%v: len %d, want %d", sz, len(got), len(want))
		}
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-9*(1+math.Abs(want[i])) {
				t.Fatalf("%v: [%d] = %g, want %g", sz, i, got[i], want[i])
			}
		}
	}
}

func TestRealFFTRoundTripAndDFT(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{2, 4, 8, 64, 1024} {
		x := make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		X := rfft(x, n)
		for k := 0; k <= n/2; k++ { // against the defining sum
			var want complex128
			for j, v := range x {
				s, c := math.Sincos(-2 * math.Pi * float64(j*k%n) / float64(n))
				want += complex(v*c, v*s)
			}
			if d := X[k] - want; math.Hypot(real(d), imag(d)) > 1e-9*float64(n) {
				t.Fatalf("n=%d: X[%d] = %v, want %v", n, k, X[k], want)
			}
		}
		y := irfft(X, n)
		for i := range x {
			if math.Abs(y[i]-x[i]) > 1e-12 {
				t.Fatalf("n=%d: round trip [%d] = %g, want %g", n, i, y[i], x[i])
			}
		}
	}
}

func TestSelfComposeMatchesRepeatedConvolution(t *testing.T) {
	p := &pmf{lower: -3, probs: []float64{0.1, 0.2, 0.3, 0.25, 0.15}, inf: 1e-3}
	for _, n := range []int{1, 2, 5, 17} {
		got, err := p.selfCompose(n, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		want := []float64{1}
		for range n {
			want = naiveConvolve(want, p.probs)
		}
		wantLower := p.lower * n
		for i, v := range want {
			j := wantLower + i - got.lower
			g := 0.0
			if j >= 0 && j < len(got.probs) {
				g = got.probs[j]
			}
			if math.Abs(g-v) > 1e-13 {
				t.Fatalf("n=%d: mass at %d = %g, want %g", n, wantLower+i, g, v)
			}
		}
		wantInf := 1 - math.Pow(1-p.inf, float64(n))
		if math.Abs(got.inf-wantInf) > 2e-15 {
			t.Fatalf("n=%d: inf mass %g, want %g", n, got.inf, wantInf)
		}
	}
}
