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

// poolScratch holds the C kernel's per-row keys and indices (2·ow ints).
var poolScratch = sync.Pool{New: func() any { return new([]int32) }}

func maxPoolPlaneC(out []float32, arg []int32, in []float32, h, w, oh, ow, k, stride, pad int) {
	sp := poolScratch.Get().(*[]int32)
	if cap(*sp) < 2*ow {
		*sp = make([]int32, 2*ow)
	}
	s := (*sp)[:2*ow]
	C.dp_maxpool_plane((*C.float)(unsafe.Pointer(&out[0])), (*C.int)(unsafe.Pointer(&arg[0])), (*C.float)(unsafe.Pointer(&in[0])),
		C.long(h), C.long(w), C.long(oh), C.long(ow), C.long(k), C.long(stride), C.long(pad),
		(*C.int)(unsafe.Pointer(&s[0])), (*C.int)(unsafe.Pointer(&s[ow])))
	poolScratch.Put(sp)
}
