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

// gramAVX512 reports whether the CPU runs the AVX-512 Gram kernel (asked
// once).
var gramAVX512 = sync.OnceValue(func() bool { return C.dp_gram64_supported() != 0 })

// gram64C runs the AVX-512 kernel and reports false, having done nothing,
// on a CPU without AVX-512.
func gram64C(dst []float64, ldd int, x []float32, rows, n, ldx int, scale []float32) bool {
	need := rows * ((n + 15) / 16 * 16)
	bp := gramBuf(need)
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

func gatherGramC(dst []float64, n int, p []float64, m int, idx []int32, kk int, skip int32) {
	C.dp_gather_gram((*C.double)(unsafe.Pointer(&dst[0])), C.long(n), (*C.double)(unsafe.Pointer(&p[0])), C.long(m),
		(*C.int)(unsafe.Pointer(&idx[0])), C.long(kk), C.int(skip))
}
