package scatter

import "math"

// fftPlan is a mixed-radix Cooley–Tukey discrete Fourier transform of one
// length n (any n ≥ 1; radix 4 and 2 first, then the odd prime factors,
// each handled by a direct DFT of that size). A plan is read-only after
// construction and may be shared by goroutines.
type fftPlan struct {
	n       int
	factors []int        // radices, product n
	fwd     []complex128 // exp(−2πik/n), k < n
	inv     []complex128 // exp(+2πik/n); never the same array as fwd
}

// MaxRadix bounds the prime factors a plan accepts (a DFT of a prime length
// p costs p² per p outputs; the sizes the scattering transform uses are
// 2^a·3^b·5^c for common image sizes).
const MaxRadix = 64

func newFFTPlan(n int) *fftPlan {
	if n < 1 {
		shapePanic("newFFTPlan", "length %d, want ≥ 1", n)
	}
	p := &fftPlan{n: n, fwd: make([]complex128, n), inv: make([]complex128, n)}
	for k := 0; k < n; k++ {
		s, c := math.Sincos(2 * math.Pi * float64(k) / float64(n))
		p.fwd[k] = complex(c, -s)
		p.inv[k] = complex(c, s)
	}
	m := n
	for m%4 == 0 {
		p.factors = append(p.factors, 4)
		m /= 4
	}
	for m%2 == 0 {
		p.factors = append(p.factors, 2)
		m /= 2
	}
	for f := 3; m > 1; f += 2 {
		for m%f == 0 {
			if f > MaxRadix {
				shapePanic("newFFTPlan", "length %d has the prime factor %d > %d", n, f, MaxRadix)
			}
			p.factors = append(p.factors, f)
			m /= f
		}
	}
	return p
}

// transform sets dst[k] = Σ_j src[j·stride]·exp(∓2πi·jk/n) for k < n (−:
// forward, +: inverse, unscaled). dst must not overlap src. tmp holds at
// least MaxRadix values.
func (p *fftPlan) transform(dst, src []complex128, stride int, inverse bool, tmp []complex128) {
	p.rows(dst, src, 1, stride, inverse, tmp)
}

// rows transforms along the first axis of an n-row array whose rows are
// width values each: row i of the input is src[i·stride·width:][:width],
// row k of the output is dst[k·width:][:width]. All columns are transformed
// together, so the loop overhead and twiddle loads of the recursion are
// shared by width values. dst must not overlap src; tmp holds at least
// MaxRadix·width values.
func (p *fftPlan) rows(dst, src []complex128, width, stride int, inverse bool, tmp []complex128) {
	tw := p.fwd
	if inverse {
		tw = p.inv
	}
	p.rec(dst[:p.n*width], src, width, stride, p.n, 0, tw, tmp)
}

// rec is one decimation-in-time level: the r interleaved subsequences
// x[q + r·j] are transformed into rows q·m … (q+1)·m−1 of dst (m = n/r),
// then combined by X[k + s·m] = Σ_q W_n^{qk} W_r^{qs} Y_q[k].
func (p *fftPlan) rec(dst, src []complex128, w, stride, n, level int, tw, tmp []complex128) {
	if n == 1 {
		copy(dst[:w], src[:w])
		return
	}
	r := p.factors[level]
	m := n / r
	for q := 0; q < r; q++ {
		p.rec(dst[q*m*w:(q+1)*m*w], src[q*stride*w:], w, stride*r, m, level+1, tw, tmp)
	}
	step := p.n / n // W_n^k = tw[k·step]
	inverse := &tw[0] == &p.inv[0]
	switch r {
	case 2:
		for k := 0; k < m; k++ {
			a, b := dst[k*w:(k+1)*w], dst[(k+m)*w:(k+m+1)*w]
			if k == 0 {
				for j, x := range a {
					y := b[j]
					a[j], b[j] = x+y, x-y
				}
				continue
			}
			t := tw[k*step]
			for j, x := range a {
				y := b[j] * t
				a[j], b[j] = x+y, x-y
			}
		}
	case 4:
		for k := 0; k < m; k++ {
			a := dst[k*w : (k+1)*w]
			b := dst[(k+m)*w : (k+m+1)*w]
			c := dst[(k+2*m)*w : (k+2*m+1)*w]
			d := dst[(k+3*m)*w : (k+3*m+1)*w]
			t1, t2, t3 := tw[k*step], tw[2*k*step], tw[3*k*step]
			for j, x := range a {
				y, z, u := b[j]*t1, c[j]*t2, d[j]*t3
				apc, amc := x+z, x-z
				bpd, bmd := y+u, y-u
				// (b−d)·W_4: ·(−i) forward, ·(+i) inverse.
				if inverse {
					bmd = complex(-imag(bmd), real(bmd))
				} else {
					bmd = complex(imag(bmd), -real(bmd))
				}
				a[j], b[j], c[j], d[j] = apc+bpd, amc+bmd, apc-bpd, amc-bmd
			}
		}
	default:
		wr := p.n / r // W_r^x = tw[x·wr]
		t := tmp[:r*w]
		for k := 0; k < m; k++ {
			for q := 0; q < r; q++ {
				f := tw[(q*k*step)%p.n]
				src, d := dst[(k+q*m)*w:(k+q*m+1)*w], t[q*w:(q+1)*w]
				for j, v := range src {
					d[j] = v * f
				}
			}
			for s := 0; s < r; s++ {
				out := dst[(k+s*m)*w : (k+s*m+1)*w]
				copy(out, t[:w])
				for q := 1; q < r; q++ {
					f := tw[((q*s)%r)*wr]
					tq := t[q*w : (q+1)*w]
					for j := range out {
						out[j] += tq[j] * f
					}
				}
			}
		}
	}
}

// fftScratch is what fft2 needs besides its array: a copy of it and the
// radix temporaries.
type fftScratch struct {
	buf, tmp []complex128
}

func newFFTScratch(m, n int) *fftScratch {
	return &fftScratch{buf: make([]complex128, m*n), tmp: make([]complex128, MaxRadix*max(m, n))}
}

// fft2 transforms the m×n row-major array a in place (unscaled in both
// directions): along columns, transpose, along the other axis, transpose.
func fft2(a []complex128, m, n int, pm, pn *fftPlan, inverse bool, s *fftScratch) {
	buf := s.buf[:m*n]
	pm.rows(buf, a, n, 1, inverse, s.tmp)
	transpose(a, buf, m, n)
	pn.rows(buf, a, m, 1, inverse, s.tmp)
	transpose(a, buf, n, m)
}

// transpose sets dst (n×m) to the transpose of src (m×n).
func transpose(dst, src []complex128, m, n int) {
	for i := 0; i < m; i++ {
		row := src[i*n : (i+1)*n]
		for j, v := range row {
			dst[j*m+i] = v
		}
	}
}
