package tensor

import "dptrain/internal/par"

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, where
// op(X) is X or Xᵀ. op(A) is m×k, op(B) is k×n, C is m×n; lda, ldb, ldc are
// the row strides of A, B, C as stored. With beta == 0, C need not be
// initialised (NaNs in C are overwritten).
//
// It runs on OpenBLAS through cgo by default and on the pure-Go kernel under
// the build tag "noblas" or with CGO_ENABLED=0 (see Backend).
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if trivialGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	sgemmParallel(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// trivialGemm checks the arguments and handles the cases without a product
// (empty C, k = 0 or alpha = 0); it reports whether the call is done.
func trivialGemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) bool {
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return true
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return true
	}
	return false
}

// SgemmSerial is Sgemm on the calling goroutine only: for use inside loops
// that are already parallel (per-example work).
func SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if trivialGemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	sgemmSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Sgemm splits C into fixed blocks when the product is large enough to pay
// for goroutines: the larger of its dimensions (rows when m ≥ n) is cut into
// gemmBlocks pieces whose size depends only on (m, n, k). The blocks are
// handed to up to Threads() goroutines, each one serial GEMM writing its own
// part of C, so every element of C comes out of the same kernel call with
// the same operands whatever the thread count: the result is the same bits
// at 1, 2 or 16 threads (OpenBLAS itself always runs single-threaded here).
const (
	gemmParallelMin = 1 << 18 // m·n·k below which Sgemm stays on one goroutine
	gemmMaxBlocks   = 16
	gemmMinBlock    = 64 // rows (or columns) per block, at least
	gemmBlockAlign  = 16
)

// gemmBlocks returns the block size and count for a dimension of length dim:
// at most gemmMaxBlocks blocks of at least gemmMinBlock (a multiple of
// gemmBlockAlign), the last one possibly shorter.
func gemmBlocks(dim int) (size, count int) {
	size = max(gemmMinBlock, (dim+gemmMaxBlocks-1)/gemmMaxBlocks)
	size = (size + gemmBlockAlign - 1) / gemmBlockAlign * gemmBlockAlign
	return size, (dim + size - 1) / size
}

func sgemmParallel(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if int64(m)*int64(n)*int64(k) < gemmParallelMin {
		sgemmSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if m >= n {
		bs, nb := gemmBlocks(m)
		par.Each(nb, func(_, blk int) {
			lo := blk * bs
			hi := min(lo+bs, m)
			ao := lo * lda
			if transA {
				ao = lo
			}
			sgemmSerial(transA, transB, hi-lo, n, k, alpha, a[ao:], lda, b, ldb, beta, c[lo*ldc:], ldc)
		})
		return
	}
	bs, nb := gemmBlocks(n)
	par.Each(nb, func(_, blk int) {
		lo := blk * bs
		hi := min(lo+bs, n)
		bo := lo
		if transB {
			bo = lo * ldb
		}
		sgemmSerial(transA, transB, m, hi-lo, k, alpha, a, lda, b[bo:], ldb, beta, c[lo:], ldc)
	})
}

func scaleC(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
		} else if beta != 1 {
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

func checkGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	checkGemmShape("Sgemm", transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
}

// SgemmNaive is the reference triple loop (float64 accumulation), kept to
// test the fast kernels against.
func SgemmNaive(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			old := float32(0)
			if beta != 0 {
				old = beta * c[i*ldc+j]
			}
			c[i*ldc+j] = alpha*float32(s) + old
		}
	}
}
