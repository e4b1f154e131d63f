package scatter

import (
	"fmt"
	"math"
	"math/cmplx"

	"dptrain/internal/par"
	"dptrain/tensor"
)

// Transform is the 2-D Morlet wavelet scattering transform of Oyallon &
// Mallat (the ScatterNet features of Tramèr & Boneh 2021), computed as
// Kymatio's Scattering2D does: a fixed, data-independent feature extractor
// with no parameters.
//
// For each input channel x (H×W) it outputs, at resolution 2^J,
//
//	order 0: x ⋆ φ_J
//	order 1: |x ⋆ ψ_{j1,θ1}| ⋆ φ_J                       (J·L maps)
//	order 2: ||x ⋆ ψ_{j1,θ1}| ⋆ ψ_{j2,θ2}| ⋆ φ_J, j1 < j2  (L²·J(J−1)/2 maps)
//
// so K = 1 + J·L + L²·J(J−1)/2 maps per channel (81 for J=2, L=8), and the
// output is [B, C·K, H/2^J, W/2^J] with channel c's maps at c·K … c·K+K−1
// in Kymatio's order (order 0, then order 1 by (j1, θ1), then order 2 by
// (j1, θ1, j2, θ2)), the layout Tramèr & Boneh reshape to 243×8×8.
//
// Computation follows Kymatio: each plane is reflect-padded to
// Mp = (H/2^J + 2)·2^J rows (likewise columns), transformed by a 2-D FFT
// (our own mixed-radix one: 40 = 2³·5 for 32×32 inputs), multiplied by the
// filters' real Fourier transforms, subsampled by periodising in the
// Fourier domain, brought back by inverse FFTs with a modulus in between,
// and finally one coarse pixel is cut from each border. Filters (Kymatio's
// filter_bank): Morlet ψ with σ = 0.8·2^j, ξ = 3π/(4·2^j), slant 4/L,
// orientation θ = (⌊L/2⌋−1−t)·π/L, corrected by κ to have zero mean, and a
// Gaussian φ with σ = 0.8·2^(J−1); all periodised over 5×5 copies of the
// padded grid and normalised by 2·3.1415·σ²/slant, as in Kymatio.
//
// The transform is not differentiated: it is meant as the first layer of a
// model (nn.Scattering), below every trainable layer, where the backward
// pass never reaches.
//
// Memoisation: with CacheBytes > 0 the layer keeps its output per distinct
// input example (keyed by the SHA-256 of the example's pixels), stored as
// float16, until CacheBytes are used; later calls with the same image return
// the stored maps instead of recomputing them. So that cached and fresh
// results agree, every output is then rounded to float16 precision (relative
// error ≤ 2⁻¹¹). The cache helps only when the same images recur (training
// without random augmentation); with augmentation it fills with one-off
// variants and stops growing at CacheBytes. Layers of the same
// configuration in one process share their memo (the first one's
// CacheBytes applies); it is freed when no such layer remains.
type Transform struct {
	J, L    int
	C, H, W int // input shape (per example)
	// CacheBytes caps the memory of memoised outputs (0: no memoisation).
	// Set it before the first Forward.
	CacheBytes int64

	k        int // maps per input channel
	mp, np   int // padded plane size
	top, lft int // padding before the first row/column
	oh, ow   int // output plane size
	planM    []*fftPlan
	planN    []*fftPlan
	psi      []scatWavelet // index j·L + t
	phi      [][]float64   // Fourier transform of φ at resolutions 0 … J−1
	s2start  []int         // index of wavelet n1's first order-2 map
	y        *tensor.Tensor
	work     []*scatWork
	cache    *scatCache
}

// scatWavelet is one band-pass filter: its real Fourier transform at
// resolutions 0 … (levels−1), each (Mp/2^r)×(Np/2^r).
type scatWavelet struct {
	j, theta int
	levels   [][]float64
}

// scatWork is one worker's scratch space.
type scatWork struct {
	u0, u1, u2 []complex128 // input and first-order spectra (Mp×Np)
	a, a2      []complex128 // second-order spectra (≤ Mp/2×Np/2)
	b          []complex128 // low-pass output (Mp/2^J×Np/2^J)
	fs         *fftScratch
	half       []uint16
}

// Channels returns K = 1 + J·L + L²·J(J−1)/2, the number of maps
// per input channel.
func Channels(j, l int) int { return 1 + j*l + l*l*j*(j-1)/2 }

// New returns the scattering transform for c×h×w inputs with J
// scales and L orientations. h and w must be multiples of 2^J with
// h/2^J, w/2^J ≥ 1 (e.g. 32×32 with J = 2 gives 8×8 maps).
func New(c, h, w, j, l int) *Transform {
	if j < 1 || l < 1 || c < 1 {
		shapePanic("scatter.New", "J=%d L=%d C=%d, want all ≥ 1", j, l, c)
	}
	s2 := 1 << j
	if h < s2 || w < s2 || h%s2 != 0 || w%s2 != 0 {
		shapePanic("scatter.New", "input %d×%d: want multiples of 2^J = %d", h, w, s2)
	}
	s := &Transform{J: j, L: l, C: c, H: h, W: w, k: Channels(j, l)}
	s.mp, s.np = (h/s2+2)*s2, (w/s2+2)*s2
	s.top, s.lft = (s.mp-h)/2, (s.np-w)/2
	if s.top >= h || s.lft >= w {
		shapePanic("scatter.New", "input %d×%d too small for reflect padding by %d", h, w, s.top)
	}
	s.oh, s.ow = h/s2, w/s2
	for r := 0; r <= j; r++ {
		s.planM = append(s.planM, newFFTPlan(s.mp>>r))
		s.planN = append(s.planN, newFFTPlan(s.np>>r))
	}
	s.buildFilters()
	next := 1 + j*l
	for _, p := range s.psi {
		s.s2start = append(s.s2start, next)
		next += l * (j - 1 - p.j)
	}
	return s
}

// OutShape returns [C·K, H/2^J, W/2^J].
func (s *Transform) OutShape() [3]int { return [3]int{s.C * s.k, s.oh, s.ow} }

func (s *Transform) Describe() string {
	return fmt.Sprintf("scattering J=%d L=%d %d→%d (%d×%d→%d×%d)", s.J, s.L, s.C, s.C*s.k, s.H, s.W, s.oh, s.ow)
}

// buildFilters computes Kymatio's filter bank on the padded grid.
func (s *Transform) buildFilters() {
	m, n := s.mp, s.np
	buf := make([]complex128, m*n)
	fs := newFFTScratch(m, n)
	fourier := func(spatial []complex128) []float64 {
		copy(buf, spatial)
		fft2(buf, m, n, s.planM[0], s.planN[0], false, fs)
		re := make([]float64, m*n)
		for i, v := range buf {
			re[i] = real(v) // the imaginary part is ~0: Kymatio drops it too
		}
		return re
	}
	levels := max(s.J-1, 1)
	for j := 0; j < s.J; j++ {
		for t := 0; t < s.L; t++ {
			theta := float64(int(float64(s.L)-float64(s.L)/2-1)-t) * math.Pi / float64(s.L)
			sigma := 0.8 * math.Pow(2, float64(j))
			xi := 3.0 / 4.0 * math.Pi / math.Pow(2, float64(j))
			f := fourier(morlet2d(m, n, sigma, theta, xi, 4/float64(s.L)))
			w := scatWavelet{j: j, theta: t}
			for r := 0; r < min(j+1, levels); r++ {
				w.levels = append(w.levels, periodizeFilter(f, m, n, r))
			}
			s.psi = append(s.psi, w)
		}
	}
	f := fourier(gabor2d(m, n, 0.8*math.Pow(2, float64(s.J-1)), 0, 0, 1))
	for r := 0; r < s.J; r++ {
		s.phi = append(s.phi, periodizeFilter(f, m, n, r))
	}
}

// gabor2d is Kymatio's periodised Gabor filter on an m×n grid: the sum over
// 5×5 grid translates of exp(−xᵀ·R·D·R⁻¹·x/(2σ²) + i·ξ·(x cos θ + y sin θ)),
// D = diag(1, slant²), divided by 2·3.1415·σ²/slant (sic).
func gabor2d(m, n int, sigma, theta, xi, slant float64) []complex128 {
	c, sn := math.Cos(theta), math.Sin(theta)
	// curv = R·D·R⁻¹ / (2σ²), R the rotation by θ.
	d := slant * slant
	c00 := (c*c + sn*sn*d) / (2 * sigma * sigma)
	c01 := (c*sn - sn*c*d) / (2 * sigma * sigma)
	c10 := (sn*c - c*sn*d) / (2 * sigma * sigma)
	c11 := (sn*sn + c*c*d) / (2 * sigma * sigma)
	g := make([]complex128, m*n)
	for ex := -2; ex <= 2; ex++ {
		for ey := -2; ey <= 2; ey++ {
			for i := 0; i < m; i++ {
				xx := float64(i + ex*m)
				for j := 0; j < n; j++ {
					yy := float64(j + ey*n)
					re := -(c00*xx*xx + (c01+c10)*xx*yy + c11*yy*yy)
					im := xx*c*xi + yy*sn*xi
					g[i*n+j] += cmplx.Exp(complex(re, im))
				}
			}
		}
	}
	norm := complex(2*3.1415*sigma*sigma/slant, 0)
	for i := range g {
		g[i] /= norm
	}
	return g
}

// morlet2d is gabor2d minus κ times its envelope, κ chosen so that the
// filter sums to zero (zero mean: ψ̂(0) = 0).
func morlet2d(m, n int, sigma, theta, xi, slant float64) []complex128 {
	wv := gabor2d(m, n, sigma, theta, xi, slant)
	env := gabor2d(m, n, sigma, theta, 0, slant)
	var sw, se complex128
	for i := range wv {
		sw += wv[i]
		se += env[i]
	}
	kappa := sw / se
	for i := range wv {
		wv[i] -= kappa * env[i]
	}
	return wv
}

// periodizeFilter is Kymatio's periodize_filter_fft: zero the frequencies
// outside the band kept at resolution r, then fold the m×n transform onto
// (m/2^r)×(n/2^r).
func periodizeFilter(f []float64, m, n, r int) []float64 {
	k := 1 << r
	mr, nr := m/k, n/k
	sx, lx := int(float64(m)*math.Pow(2, float64(-r-1))), int(float64(m)*(1-math.Pow(2, float64(-r))))
	sy, ly := int(float64(n)*math.Pow(2, float64(-r-1))), int(float64(n)*(1-math.Pow(2, float64(-r))))
	out := make([]float64, mr*nr)
	for i := 0; i < m; i++ {
		if i >= sx && i < sx+lx {
			continue
		}
		for j := 0; j < n; j++ {
			if j >= sy && j < sy+ly {
				continue
			}
			out[(i%mr)*nr+j%nr] += f[i*n+j]
		}
	}
	return out
}

// periodizeMul sets dst ((m/k)×(n/k)) to the mean over the k×k aliases of
// src⊙f (m×n): the Fourier transform of the spatial subsampling by k of
// the filtered signal.
func periodizeMul(dst, src []complex128, f []float64, m, n, k int) {
	mk, nk := m/k, n/k
	inv := 1 / float64(k*k)
	for u := 0; u < mk; u++ {
		d := dst[u*nk : (u+1)*nk]
		clear(d)
		for a := 0; a < k; a++ {
			row := (u + a*mk) * n
			for b := 0; b < k; b++ {
				off := row + b*nk
				sr, fr := src[off:off+nk], f[off:off+nk]
				for v := range d {
					d[v] += sr[v] * complex(fr[v], 0)
				}
			}
		}
		if k > 1 {
			for v := range d {
				d[v] *= complex(inv, 0)
			}
		}
	}
}

func reflectIndex(t, n int) int {
	if t < 0 {
		return -t
	}
	if t >= n {
		return 2*(n-1) - t
	}
	return t
}

func (s *Transform) newWork() *scatWork {
	mn := s.mp * s.np
	return &scatWork{
		u0: make([]complex128, mn), u1: make([]complex128, mn), u2: make([]complex128, mn),
		a: make([]complex128, mn/4), a2: make([]complex128, mn/4),
		b: make([]complex128, (s.mp>>s.J)*(s.np>>s.J)), fs: newFFTScratch(s.mp, s.np),
	}
}

// Apply computes the scattering maps of every example of x ([B, C, H, W])
// in parallel over examples, into a tensor owned by the transform (valid
// until the next call).
func (s *Transform) Apply(x *tensor.Tensor) *tensor.Tensor {
	if len(x.Shape) != 4 || x.Shape[1] != s.C || x.Shape[2] != s.H || x.Shape[3] != s.W {
		shapePanic("Transform.Apply", "input %v, want [B, %d, %d, %d]", x.Shape, s.C, s.H, s.W)
	}
	b := x.Shape[0]
	s.y = tensor.Ensure(s.y, b, s.C*s.k, s.oh, s.ow)
	nw := par.Workers(b)
	for len(s.work) < nw {
		s.work = append(s.work, s.newWork())
	}
	if s.CacheBytes > 0 && s.cache == nil {
		s.cache = sharedScatCache([5]int{s.C, s.H, s.W, s.J, s.L}, s.CacheBytes, s.C*s.k*s.oh*s.ow)
	}
	in, out := s.C*s.H*s.W, s.C*s.k*s.oh*s.ow
	// Examples are independent and a worker's scratch is overwritten by
	// each example it takes, so the maps are the same bits whichever worker
	// computes them and at any thread count; with the memo, every output is
	// rounded to float16 whether it was computed or found.
	par.EachN(b, nw, func(wk, i int) {
		w := s.work[wk]
		xi, yi := x.Data[i*in:(i+1)*in], s.y.Data[i*out:(i+1)*out]
		if s.cache == nil {
			s.example(w, xi, yi)
			return
		}
		key := s.cache.key(w, xi)
		if s.cache.get(key, yi) {
			return
		}
		s.example(w, xi, yi)
		s.cache.put(w, key, yi) // rounds yi to float16 precision
	})
	return s.y
}

// example computes the C·K maps of one example.
func (s *Transform) example(w *scatWork, x, y []float32) {
	plane := s.oh * s.ow
	for c := 0; c < s.C; c++ {
		s.plane(w, x[c*s.H*s.W:(c+1)*s.H*s.W], y[c*s.k*plane:(c+1)*s.k*plane])
	}
}

// plane computes the K maps of one H×W channel. Wavelets of one scale are
// taken in pairs so that the forward transforms of two real moduli share
// one complex FFT.
func (s *Transform) plane(w *scatWork, x, y []float32) {
	mp, np, J, L := s.mp, s.np, s.J, s.L
	for i := 0; i < mp; i++ {
		src := x[reflectIndex(i-s.top, s.H)*s.W:]
		row := w.u0[i*np : (i+1)*np]
		for j := range row {
			row[j] = complex(float64(src[reflectIndex(j-s.lft, s.W)]), 0)
		}
	}
	fft2(w.u0, mp, np, s.planM[0], s.planN[0], false, w.fs)
	s.lowpass(w, w.u0, 0, s.out(y, 0))
	for j1 := 0; j1 < J; j1++ {
		m1, n1 := mp>>j1, np>>j1
		for t := 0; t < L; t += 2 {
			na := j1*L + t
			// U1 = |x ⋆ ψ_{j1,θ1}| at resolution 2^j1, as a spectrum.
			ua, ub := w.u1[:m1*n1], w.u2[:m1*n1]
			periodizeMul(ua, w.u0, s.psi[na].levels[0], mp, np, 1<<j1)
			if t+1 < L {
				periodizeMul(ub, w.u0, s.psi[na+1].levels[0], mp, np, 1<<j1)
				modulusFFTPair(ua, ub, m1, n1, s.planM[j1], s.planN[j1], w.fs)
			} else {
				modulusFFT(ua, m1, n1, s.planM[j1], s.planN[j1], w.fs)
			}
			s.fromFirstOrder(w, ua, na, y)
			if t+1 < L {
				s.fromFirstOrder(w, ub, na+1, y)
			}
		}
	}
}

// out returns map k of a plane's output.
func (s *Transform) out(y []float32, k int) []float32 {
	p := s.oh * s.ow
	return y[k*p : (k+1)*p]
}

// fromFirstOrder writes the order-1 map of wavelet n1 and its order-2 maps,
// given the spectrum u1 of |x ⋆ ψ_n1| (at resolution 2^j1).
func (s *Transform) fromFirstOrder(w *scatWork, u1 []complex128, n1 int, y []float32) {
	j1 := n1 / s.L
	m1, nc1 := s.mp>>j1, s.np>>j1
	s.lowpass(w, u1, j1, s.out(y, 1+n1))
	k2 := s.s2start[n1]
	rest := s.psi[(j1+1)*s.L:]
	for i := 0; i < len(rest); {
		j2 := rest[i].j
		m2, n2 := s.mp>>j2, s.np>>j2
		a, b := w.a[:m2*n2], w.a2[:m2*n2]
		periodizeMul(a, u1, rest[i].levels[j1], m1, nc1, 1<<(j2-j1))
		if i+1 < len(rest) && rest[i+1].j == j2 {
			periodizeMul(b, u1, rest[i+1].levels[j1], m1, nc1, 1<<(j2-j1))
			modulusFFTPair(a, b, m2, n2, s.planM[j2], s.planN[j2], w.fs)
			s.lowpass(w, a, j2, s.out(y, k2))
			s.lowpass(w, b, j2, s.out(y, k2+1))
			i, k2 = i+2, k2+2
			continue
		}
		modulusFFT(a, m2, n2, s.planM[j2], s.planN[j2], w.fs)
		s.lowpass(w, a, j2, s.out(y, k2))
		i, k2 = i+1, k2+1
	}
}

// modulusFFT replaces the m×n spectrum a by the spectrum of |ifft(a)|.
func modulusFFT(a []complex128, m, n int, pm, pn *fftPlan, fs *fftScratch) {
	fft2(a, m, n, pm, pn, true, fs)
	inv := 1 / float64(m*n)
	for i, v := range a {
		a[i] = complex(math.Hypot(real(v), imag(v))*inv, 0)
	}
	fft2(a, m, n, pm, pn, false, fs)
}

// modulusFFTPair is modulusFFT on two spectra, with one forward FFT for
// both real moduli p and q: Z = F(p + i·q), then P[k] = (Z[k] + Z̄[−k])/2
// and Q[k] = (Z[k] − Z̄[−k])/(2i).
func modulusFFTPair(a, b []complex128, m, n int, pm, pn *fftPlan, fs *fftScratch) {
	fft2(a, m, n, pm, pn, true, fs)
	fft2(b, m, n, pm, pn, true, fs)
	inv := 1 / float64(m*n)
	for i, v := range a {
		u := b[i]
		a[i] = complex(math.Hypot(real(v), imag(v))*inv, math.Hypot(real(u), imag(u))*inv)
	}
	fft2(a, m, n, pm, pn, false, fs)
	for u := 0; u < m; u++ {
		nu := ((m - u) % m) * n
		for v := 0; v < n; v++ {
			z, zc := a[u*n+v], cmplx.Conj(a[nu+(n-v)%n])
			d := z - zc
			b[u*n+v] = complex(imag(d)/2, -real(d)/2)
		}
	}
	for i, q := range b {
		// P = Z − i·Q
		a[i] -= complex(-imag(q), real(q))
	}
}

// lowpass writes the real part of the inverse transform of u⊙φ (u at
// resolution 2^res) subsampled to 2^J, without its border pixels.
func (s *Transform) lowpass(w *scatWork, u []complex128, res int, y []float32) {
	mr, nr := s.mp>>res, s.np>>res
	mJ, nJ := s.mp>>s.J, s.np>>s.J
	periodizeMul(w.b, u, s.phi[res], mr, nr, 1<<(s.J-res))
	fft2(w.b, mJ, nJ, s.planM[s.J], s.planN[s.J], true, w.fs)
	inv := 1 / float64(mJ*nJ)
	for i := 1; i < mJ-1; i++ {
		for j := 1; j < nJ-1; j++ {
			y[(i-1)*s.ow+j-1] = float32(real(w.b[i*nJ+j]) * inv)
		}
	}
}

func shapePanic(op, format string, args ...any) {
	panic(&tensor.ShapeError{Op: op, Msg: fmt.Sprintf(format, args...)})
}
