//go:build cgo && !noblas && linux && amd64

package tensor

/*
#cgo CFLAGS: -O3
#include "gram_c.h"
*/
import "C"

import (
	"sync"
	"unsafe"
)

// gramBufs holds the kernels' float64 conversion buffers (rows × n padded
// to 16), reused across calls.
var gramBufs = sync.Pool{New: func() any { return new([]float64) }}

// gram64C runs the AVX-512 kernel and reports false, having done nothing,
// on a CPU without AVX-512.
func gram64C(dst []float64, ldd int, x []float32, rows, n, ldx int, scale []float32) bool {
	bp := gramBufs.Get().(*[]float64)
	need := rows * ((n + 15) / 16 * 16)
	if cap(*bp) < need {
		*bp = make([]float64, need)
	}
	buf := (*bp)[:need]
	var sp *C.float
	if scale != nil {
		sp = (*C.float)(unsafe.Pointer(&scale[0]))
	}
	ok := C.dp_gram64((*C.double)(unsafe.Pointer(&dst[0])), C.long(ldd), (*C.float)(unsafe.Pointer(&x[0])), C.long(rows), C.long(n), C.long(ldx), sp,
		(*C.double)(unsafe.Pointer(&buf[0])))
	gramBufs.Put(bp)
	return ok != 0
}
