package accounting

import (
	"math"
	"math/bits"
)

// fft is an in-place iterative radix-2 complex FFT of a power-of-two length
// (forward: e^{-2πi jk/n}; inverse scales by 1/n). Twiddles are computed
// directly per stage from math.Sincos, so accuracy does not degrade with n.
func fft(x []complex128, inverse bool) {
	n := len(x)
	if n <= 1 {
		return
	}
	if n&(n-1) != 0 {
		panic("accounting: fft length must be a power of two")
	}
	shift := 64 - uint(bits.TrailingZeros(uint(n)))
	for i := range n {
		j := int(bits.Reverse64(uint64(i)) >> shift)
		if i < j {
			x[i], x[j] = x[j], x[i]
		}
	}
	sign := -1.0
	if inverse {
		sign = 1
	}
	// Twiddle table for the largest stage; smaller stages stride through it.
	half := n / 2
	tw := make([]complex128, half)
	for k := range half {
		s, c := math.Sincos(sign * 2 * math.Pi * float64(k) / float64(n))
		tw[k] = complex(c, s)
	}
	for size := 2; size <= n; size <<= 1 {
		h := size / 2
		stride := n / size
		for start := 0; start < n; start += size {
			blk := x[start : start+size]
			for k := range h {
				t := tw[k*stride] * blk[k+h]
				u := blk[k]
				blk[k] = u + t
				blk[k+h] = u - t
			}
		}
	}
	if inverse {
		inv := complex(1/float64(n), 0)
		for i := range x {
			x[i] *= inv
		}
	}
}

// nextPow2 returns the smallest power of two ≥ n (n ≥ 1).
func nextPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// convolve returns the full linear convolution of a and b (length
// len(a)+len(b)−1), by FFT.
func convolve(a, b []float64) []float64 {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	m := len(a) + len(b) - 1
	if len(a)*len(b) <= 4096 {
		out := make([]float64, m)
		for i, x := range a {
			for j, y := range b {
				out[i+j] += x * y
			}
		}
		return out
	}
	n := nextPow2(m)
	fa := make([]complex128, n)
	fb := make([]complex128, n)
	for i, v := range a {
		fa[i] = complex(v, 0)
	}
	for i, v := range b {
		fb[i] = complex(v, 0)
	}
	fft(fa, false)
	fft(fb, false)
	for i := range fa {
		fa[i] *= fb[i]
	}
	fft(fa, true)
	out := make([]float64, m)
	for i := range out {
		out[i] = real(fa[i])
	}
	return out
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
