package tensor

// Float64 products for the per-example norm rules (nn's ghost and
// materialise rules form Gram matrices and per-example gradients in float64
// so that the norms they report are accurate to ~1e-13 instead of the
// ~1e-4 that float32 sums over thousands of terms allow). They run on the
// calling goroutine only, like SgemmSerial: the callers are already
// parallel over examples.

// DgemmSerial computes C = alpha·op(A)·op(B) + beta·C in float64, with the
// conventions of Sgemm (row-major, op(A) m×k, op(B) k×n, C m×n; beta == 0
// overwrites C).
func DgemmSerial(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	checkGemmShape("DgemmSerial", transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleRows64(m, n, beta, c, ldc, false)
		return
	}
	dgemmSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// DsyrkSerial computes the upper triangle (i ≤ j) of the symmetric n×n
// matrix C = alpha·op(A)·op(A)ᵀ + beta·C in float64, where op(A) is A (n×k)
// or, with trans, Aᵀ for A stored k×n; so with trans, C is the Gram matrix
// of A's columns. The strict lower triangle of C is not touched.
func DsyrkSerial(trans bool, n, k int, alpha float64, a []float64, lda int, beta float64, c []float64, ldc int) {
	ar, ac := n, k
	if trans {
		ar, ac = k, n
	}
	if n < 0 || k < 0 {
		shapePanic("DsyrkSerial", "negative size n=%d k=%d", n, k)
	}
	checkOperand("DsyrkSerial", "A", ar, ac, lda, len(a))
	checkOperand("DsyrkSerial", "C", n, n, ldc, len(c))
	if n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleRows64(n, n, beta, c, ldc, true)
		return
	}
	dsyrkSerial(trans, n, k, alpha, a, lda, beta, c, ldc)
}

func checkGemmShape(op string, transA, transB bool, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		shapePanic(op, "negative size m=%d n=%d k=%d", m, n, k)
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkOperand(op, "A", ar, ac, lda, la)
	checkOperand(op, "B", br, bc, ldb, lb)
	checkOperand(op, "C", m, n, ldc, lc)
}

// scaleRows64 sets C = beta·C (beta = 0 overwrites, NaNs included) for an
// m×n row-major C, only its upper triangle (j ≥ i) when upper.
func scaleRows64(m, n int, beta float64, c []float64, ldc int, upper bool) {
	for i := 0; i < m; i++ {
		lo := 0
		if upper {
			lo = i
		}
		row := c[i*ldc+lo : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

func checkOperand(op, name string, rows, cols, ld, have int) {
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols {
		shapePanic(op, "%s: leading dimension %d < %d columns", name, ld, cols)
	}
	if have < (rows-1)*ld+cols {
		shapePanic(op, "%s: len %d too short for %d×%d with stride %d", name, have, rows, cols, ld)
	}
}

// dgemmGo is the pure-Go float64 kernel (the fallback backend, and the
// reference the OpenBLAS one is tested against): C[i,:] = beta·C[i,:] +
// Σ_p alpha·op(A)[i,p]·op(B)[p,:].
func dgemmGo(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := 0; i < m; i++ {
		crow := c[i*ldc : i*ldc+n]
		for j := range crow {
			if beta == 0 {
				crow[j] = 0
			} else {
				crow[j] *= beta
			}
		}
		for p := 0; p < k; p++ {
			var av float64
			if transA {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			av *= alpha
			if av == 0 {
				continue
			}
			if transB {
				for j := range crow {
					crow[j] += av * b[j*ldb+p]
				}
				continue
			}
			for j, bv := range b[p*ldb : p*ldb+n] {
				crow[j] += av * bv
			}
		}
	}
}

// dsyrkGo is the pure-Go float64 SYRK (upper triangle): C is scaled by
// beta, then the rank-1 updates of op(A)'s k columns (rows of A with trans)
// are added in order, along contiguous rows.
func dsyrkGo(trans bool, n, k int, alpha float64, a []float64, lda int, beta float64, c []float64, ldc int) {
	scaleRows64(n, n, beta, c, ldc, true)
	if !trans {
		for i := 0; i < n; i++ {
			ai := a[i*lda : i*lda+k]
			for j := i; j < n; j++ {
				var s float64
				for p, v := range a[j*lda : j*lda+k] {
					s += ai[p] * v
				}
				c[i*ldc+j] += alpha * s
			}
		}
		return
	}
	for p := 0; p < k; p++ {
		ar := a[p*lda : p*lda+n]
		for i, v := range ar {
			av := alpha * v
			if av == 0 {
				continue
			}
			crow := c[i*ldc : i*ldc+n]
			for j := i; j < n; j++ {
				crow[j] += av * ar[j]
			}
		}
	}
}
