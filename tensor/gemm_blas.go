//go:build cgo && !noblas

package tensor

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
extern void openblas_set_num_threads(int);
extern char* openblas_get_corename(void);
*/
import "C"

import "unsafe"

// Backend names the GEMM implementation compiled in.
const Backend = "openblas"

// OpenBLAS always runs single-threaded: dptrain parallelises at the Go level
// (over examples, or by splitting large products in Sgemm), which composes
// with per-example work and never oversubscribes the cores.

// OpenBLAS runs single-threaded: dptrain parallelises over GEMM blocks
// itself (internal/par), so that results do not depend on the thread count.
func init() { C.openblas_set_num_threads(1) }

// BackendCore names the kernels the GEMM library chose for this CPU
// (OpenBLAS's core name, e.g. "Haswell", "SkylakeX"; "go" for the pure-Go
// kernels).
func BackendCore() string { return C.GoString(C.openblas_get_corename()) }

func sgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans), C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k), C.float(alpha),
		(*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda),
		(*C.float)(unsafe.Pointer(&b[0])), C.blasint(ldb), C.float(beta),
		(*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}

func dgemmSerial(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	ta, tb := C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans), C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	C.cblas_dgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k), C.double(alpha),
		(*C.double)(unsafe.Pointer(&a[0])), C.blasint(lda),
		(*C.double)(unsafe.Pointer(&b[0])), C.blasint(ldb), C.double(beta),
		(*C.double)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}

func dsyrkSerial(trans bool, n, k int, alpha float64, a []float64, lda int, beta float64, c []float64, ldc int) {
	t := C.enum_CBLAS_TRANSPOSE(C.CblasNoTrans)
	if trans {
		t = C.CblasTrans
	}
	C.cblas_dsyrk(C.CblasRowMajor, C.CblasUpper, t, C.blasint(n), C.blasint(k), C.double(alpha),
		(*C.double)(unsafe.Pointer(&a[0])), C.blasint(lda), C.double(beta),
		(*C.double)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}
