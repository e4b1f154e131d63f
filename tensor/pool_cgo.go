//go:build cgo && !noblas && linux && amd64

package tensor

/*
#cgo CFLAGS: -O3
#include "pool_c.h"
*/
import "C"

import (
	"sync"
	"unsafe"
)

// poolScratch holds the C kernels' scratch: 2·ow ints for the per-row
// keys and indices of dp_maxpool_plane, dp_maxpool_rows_scratch values for
// dp_maxpool_plane_rows.
var poolScratch = sync.Pool{New: func() any { return new([]int32) }}

// maxPoolPlaneC runs dp_maxpool_plane_rows where windows overlap and are
// strided (k > stride > 1: it reads each input once, the window scan k
// times through strided loads) and dp_maxpool_plane otherwise (stride 1,
// or windows that do not overlap, where the scan's loads are already
// unit-stride or each input is read once).
func maxPoolPlaneC(out []float32, arg []int32, in []float32, h, w, oh, ow, k, stride, pad int) {
	rows := k > stride && stride > 1
	n := 2 * ow
	if rows {
		n = int(C.dp_maxpool_rows_scratch(C.long(h), C.long(w), C.long(ow), C.long(k), C.long(stride), C.long(pad)))
	}
	sp := poolScratch.Get().(*[]int32)
	if cap(*sp) < n {
		*sp = make([]int32, n)
	}
	s := (*sp)[:n]
	o, a, x := (*C.float)(unsafe.Pointer(&out[0])), (*C.int)(unsafe.Pointer(&arg[0])), (*C.float)(unsafe.Pointer(&in[0]))
	if rows {
		C.dp_maxpool_plane_rows(o, a, x, C.long(h), C.long(w), C.long(oh), C.long(ow), C.long(k), C.long(stride), C.long(pad), (*C.int)(unsafe.Pointer(&s[0])))
	} else {
		C.dp_maxpool_plane(o, a, x, C.long(h), C.long(w), C.long(oh), C.long(ow), C.long(k), C.long(stride), C.long(pad),
			(*C.int)(unsafe.Pointer(&s[0])), (*C.int)(unsafe.Pointer(&s[ow])))
	}
	poolScratch.Put(sp)
}
