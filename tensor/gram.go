package tensor

import "sync"

// Gram64 sets dst (n×n, row stride ldd) to the float64 Gram matrix of the
// columns of the float32 matrix x (rows×n, row stride ldx), each row r
// scaled by s_r = scale[r] (1 when scale is nil):
//
//	dst[u, v] = Σ_r (x[r, u]·s_r)·(x[r, v]·s_r).
//
// Every factor x·s is formed in float64 (exact: the product of two
// float32 numbers), so the only roundings are those of the products of two
// factors (none when scale is nil: they are products of float32 numbers)
// and of the float64 sum over r, in an order left to the kernel: each
// entry is within γ⁶⁴_{rows+1}·Σ_r |x_ru·s_r|·|x_rv·s_r| of the exact one,
// whatever the order (the bound the ghost norm rule takes). Both triangles
// are written (the matrix is symmetric to the bit). x is not modified. It
// runs on the calling goroutine only, like DsyrkSerial.
//
// With cgo on an amd64 CPU with AVX-512 the product runs in a vectorised C
// kernel (gram_c.c); elsewhere it converts x and calls DsyrkSerial.
func Gram64(dst []float64, ldd int, x []float32, rows, n, ldx int, scale []float32) {
	if rows < 0 || n < 0 || ldd < n || (rows > 0 && ldx < n) {
		shapePanic("Gram64", "rows=%d n=%d ldx=%d ldd=%d", rows, n, ldx, ldd)
	}
	if n == 0 {
		return
	}
	if len(dst) < (n-1)*ldd+n || (rows > 0 && len(x) < (rows-1)*ldx+n) || (scale != nil && len(scale) < rows) {
		shapePanic("Gram64", "dst %d, x %d, scale %d for rows=%d n=%d ldx=%d ldd=%d", len(dst), len(x), len(scale), rows, n, ldx, ldd)
	}
	if rows == 0 {
		for u := 0; u < n; u++ {
			clear(dst[u*ldd : u*ldd+n])
		}
		return
	}
	if haveCKernels && n >= gramCMin && gramAVX512() && gram64C(dst, ldd, x, rows, n, ldx, scale) {
		return
	}
	gram64Go(dst, ldd, x, rows, n, ldx, scale)
}

// gramBufs holds float64 conversion buffers of Gram64, reused across
// calls (one per concurrent call).
var gramBufs = sync.Pool{New: func() any { return new([]float64) }}

// gramBuf returns a pooled buffer of at least n floats (put it back in
// gramBufs after use).
func gramBuf(n int) *[]float64 {
	bp := gramBufs.Get().(*[]float64)
	if cap(*bp) < n {
		*bp = make([]float64, n)
	}
	return bp
}

// gramCMin is the size from which Gram64 calls the C kernel: it computes
// tiles of 16 columns, which smaller matrices mostly waste.
const gramCMin = 16

// gram64Go is Gram64 by conversion to float64 and DsyrkSerial (the
// reference of the C kernel, and the pure-Go build's implementation).
func gram64Go(dst []float64, ldd int, x []float32, rows, n, ldx int, scale []float32) {
	bp := gramBuf(rows * n)
	defer gramBufs.Put(bp)
	a := (*bp)[:rows*n]
	for r := 0; r < rows; r++ {
		s := 1.0
		if scale != nil {
			s = float64(scale[r])
		}
		for u, v := range x[r*ldx : r*ldx+n] {
			a[r*n+u] = float64(v) * s
		}
	}
	DsyrkSerial(true, n, rows, 1, a, n, 0, dst, ldd)
	for u := 0; u < n; u++ {
		for v := u + 1; v < n; v++ {
			dst[v*ldd+u] = dst[u*ldd+v]
		}
	}
}

// GatherGram sets the upper triangle (s ≤ t) of dst (n×n, stride n) to
//
//	dst[s, t] = Σ_κ p[idx[κ·n+s], idx[κ·n+t]]   (κ = 0, …, kk−1)
//
// for the m×m matrix p (stride m), skipping the terms whose row index
// idx[κ·n+s] is skip (a row of p known to be zero); the strict lower
// triangle is set to 0. The terms are added in the order κ = 0, 1, … on
// every path (Go, C), so the result is the same bits on all of them. It
// is how the ghost rule forms an example's patch Gram from its pixel Gram
// (nn/conv_gram.go): idx maps each kernel offset and output position to the
// input pixel it reads. Every index must lie in [0, m).
func GatherGram(dst []float64, n int, p []float64, m int, idx []int32, kk int, skip int32) {
	if n < 0 || m < 0 || kk < 0 || len(dst) < n*n || len(p) < m*m || len(idx) < kk*n {
		shapePanic("GatherGram", "dst %d, p %d, idx %d for n=%d m=%d kk=%d", len(dst), len(p), len(idx), n, m, kk)
	}
	for _, u := range idx[:kk*n] {
		if u < 0 || int(u) >= m {
			shapePanic("GatherGram", "index %d outside the %d rows of p", u, m)
		}
	}
	if n == 0 {
		return
	}
	if haveCKernels && kk > 0 && m > 0 {
		gatherGramC(dst, n, p, m, idx, kk, skip)
		return
	}
	gatherGramGo(dst, n, p, m, idx, kk, skip)
}

func gatherGramGo(dst []float64, n int, p []float64, m int, idx []int32, kk int, skip int32) {
	clear(dst[:n*n])
	for κ := 0; κ < kk; κ++ {
		ik := idx[κ*n : (κ+1)*n]
		for s, u := range ik {
			if u == skip {
				continue
			}
			prow := p[int(u)*m : (int(u)+1)*m]
			grow := dst[s*n : (s+1)*n]
			for q := s; q < n; q++ {
				grow[q] += prow[ik[q]]
			}
		}
	}
}
