package accounting

import (
	"math"
	"math/bits"
	"sync"
)

// This file is a small FFT for real sequences of power-of-two length n: a
// complex radix-2 FFT of length n/2 on the even/odd-packed input plus the
// usual split step, so a real transform costs about half a complex one.
// Twiddles are computed with math.Sincos (not by recurrence) and cached per
// length.

// fftTables holds, for a real transform of length n = 2m: w[k] =
// e^{-2πik/n} for k < m (the split step) and, for each stage s = 2, 4, …, m
// of the length-m complex FFT, its twiddles e^{-2πik/s} (k < s/2) stored
// contiguously at stages[s/2−1 : s−1].
type fftTables struct {
	w      []complex128
	stages []complex128
}

var fftCache struct {
	sync.Mutex
	m    map[int]*fftTables
	keys []int
}

// tablesFor returns the (cached) tables of a real FFT of length n.
func tablesFor(n int) *fftTables {
	fftCache.Lock()
	defer fftCache.Unlock()
	if t, ok := fftCache.m[n]; ok {
		return t
	}
	m := n / 2
	t := &fftTables{w: make([]complex128, m), stages: make([]complex128, max(m-1, 0))}
	for k := range m {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(n))
		t.w[k] = complex(c, s)
	}
	for s := 2; s <= m; s <<= 1 {
		h := s / 2
		stride := n / s // e^{-2πik/s} = w[k·n/s]
		for k := range h {
			t.stages[h-1+k] = t.w[k*stride]
		}
	}
	if fftCache.m == nil {
		fftCache.m = map[int]*fftTables{}
	}
	const keep = 6 // a few sizes: enough for a calibration's evaluations
	if len(fftCache.keys) == keep {
		delete(fftCache.m, fftCache.keys[0])
		fftCache.keys = fftCache.keys[1:]
	}
	fftCache.m[n] = t
	fftCache.keys = append(fftCache.keys, n)
	return t
}

// cfft is an in-place forward complex FFT of power-of-two length m with the
// given stage twiddles.
func cfft(x []complex128, stages []complex128) {
	m := len(x)
	if m <= 1 {
		return
	}
	shift := 64 - uint(bits.TrailingZeros(uint(m)))
	for i := range m {
		j := int(bits.Reverse64(uint64(i)) >> shift)
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	for i := 0; i < m; i += 2 {
		u, v := x[i], x[i+1]
		x[i], x[i+1] = u+v, u-v
	}
	for s := 4; s <= m; s <<= 1 {
		h := s / 2
		tw := stages[h-1 : s-1]
		for start := 0; start < m; start += s {
			lo := x[start : start+h]
			hi := x[start+h : start+s]
			for k, w := range tw {
				t := w * hi[k]
				u := lo[k]
				lo[k] = u + t
				hi[k] = u - t
			}
		}
	}
}

// rfft returns X[0..n/2] of the length-n DFT of the real sequence x
// zero-padded to n (n a power of two ≥ 2, len(x) ≤ n).
func rfft(x []float64, n int) []complex128 {
	m := n / 2
	t := tablesFor(n)
	z := make([]complex128, m+1)
	for k := range m {
		var re, im float64
		if 2*k < len(x) {
			re = x[2*k]
		}
		if 2*k+1 < len(x) {
			im = x[2*k+1]
		}
		z[k] = complex(re, im)
	}
	cfft(z[:m], t.stages)
	// Split: E = (Z[k] + conj Z[m−k])/2, O = (Z[k] − conj Z[m−k])/(2i),
	// X[k] = E + w^k O, X[m] = E[0] − O[0].
	z[m] = z[0]
	for k := 0; k <= m/2; k++ {
		a, b := z[k], conj(z[m-k])
		e1, o1 := (a+b)*0.5, (a-b)*complex(0, -0.5)
		a2, b2 := z[m-k], conj(z[k])
		e2, o2 := (a2+b2)*0.5, (a2-b2)*complex(0, -0.5)
		if k == 0 {
			z[0], z[m] = e1+o1, e1-o1
			continue
		}
		z[k] = e1 + t.w[k]*o1
		z[m-k] = e2 + t.w[m-k]*o2
	}
	return z
}

// irfft returns the real length-n sequence whose DFT has the Hermitian half
// X[0..n/2]; X is overwritten.
func irfft(X []complex128, n int) []float64 {
	m := n / 2
	t := tablesFor(n)
	// Unsplit: E = (X[k] + conj X[m−k])/2, O = (X[k] − conj X[m−k])/2·w^{−k},
	// Z[k] = E + iO; then z = IDFT_m(Z) = conj(DFT_m(conj Z))/m.
	for k := 0; k <= m/2; k++ {
		xk, xmk := X[k], X[m-k]
		if k == 0 {
			e, o := (xk+conj(X[m]))*0.5, (xk-conj(X[m]))*0.5
			X[0] = conj(e + complex(0, 1)*o)
			continue
		}
		e1, o1 := (xk+conj(xmk))*0.5, (xk-conj(xmk))*0.5*conj(t.w[k])
		X[k] = conj(e1 + complex(0, 1)*o1)
		if k == m-k {
			continue
		}
		e2, o2 := (xmk+conj(xk))*0.5, (xmk-conj(xk))*0.5*conj(t.w[m-k])
		X[m-k] = conj(e2 + complex(0, 1)*o2)
	}
	z := X[:m]
	cfft(z, t.stages)
	out := make([]float64, n)
	inv := 1 / float64(m)
	for k, v := range z {
		// conj(v)/m = x[2k] + i x[2k+1]
		out[2*k] = real(v) * inv
		out[2*k+1] = -imag(v) * inv
	}
	return out
}

func conj(z complex128) complex128 { return complex(real(z), -imag(z)) }

// nextPow2 returns the smallest power of two ≥ n (n ≥ 1).
func nextPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// convolve returns the full linear convolution of a and b (length
// len(a)+len(b)−1): directly when small, else by FFT.
func convolve(a, b []float64) []float64 {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	m := len(a) + len(b) - 1
	if len(a)*len(b) <= 1<<14 {
		out := make([]float64, m)
		for i, x := range a {
			for j, y := range b {
				out[i+j] += x * y
			}
		}
		return out
	}
	n := max(nextPow2(m), 4)
	fa, fb := rfft(a, n), rfft(b, n)
	for i := range fa {
		fa[i] *= fb[i]
	}
	return irfft(fa, n)[:m]
}

// cpow returns z^n for n ≥ 0 by binary exponentiation.
func cpow(z complex128, n int) complex128 {
	r := complex(1, 0)
	for n > 0 {
		if n&1 == 1 {
			r *= z
		}
		z *= z
		n >>= 1
	}
	return r
}
