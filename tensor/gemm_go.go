//go:build !cgo || noblas

package tensor

// Backend names the GEMM implementation compiled in.
const Backend = "go"

// sgemmSerial is the pure-Go kernel on the calling goroutine: it computes C[i,:] += alpha·A[i,p]·B[p,:] with B accessed by rows (op(B) is
// first packed row-major when transposed).
func sgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	scaleC(m, n, beta, c, ldc)
	bb, ldbb := b, ldb
	if transB {
		bb = make([]float32, k*n)
		for j := 0; j < n; j++ {
			for p := 0; p < k; p++ {
				bb[p*n+j] = b[j*ldb+p]
			}
		}
		ldbb = n
	}
	{
		for i := 0; i < m; i++ {
			crow := c[i*ldc : i*ldc+n]
			for p := 0; p < k; p++ {
				var av float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if av == 0 {
					continue
				}
				av *= alpha
				brow := bb[p*ldbb : p*ldbb+n]
				for j, bv := range brow {
					crow[j] += av * bv
				}
			}
		}
	}
}

func dgemmSerial(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	dgemmGo(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func dsyrkSerial(trans bool, n, k int, alpha float64, a []float64, lda int, beta float64, c []float64, ldc int) {
	dsyrkGo(trans, n, k, alpha, a, lda, beta, c, ldc)
}

// BackendCore names the kernels the GEMM library chose for this CPU: "go".
func BackendCore() string { return "go" }
