//go:build cgo

package data

/*
#cgo CFLAGS: -O3
#include "resize_c.h"
*/
import "C"

import "unsafe"

// resampleH runs the horizontal pass in C (resampleHGo's bits).
func resampleH(rows []uint8, sw int, f *filterWeights, dw int, tmp []float32) {
	if len(rows) == 0 || dw == 0 {
		return
	}
	C.dp_resample_h((*C.uchar)(unsafe.Pointer(&rows[0])), C.int(len(rows)/sw), C.int(sw),
		(*C.int)(unsafe.Pointer(&f.start[0])), (*C.int)(unsafe.Pointer(&f.n[0])),
		(*C.float)(unsafe.Pointer(&f.w[0])), C.int(f.taps), C.int(dw), (*C.float)(unsafe.Pointer(&tmp[0])))
}

// resampleV runs the vertical pass in C (resampleVGo's bits).
func resampleV(tmp []float32, dw, ylo int, f *filterWeights, dh int, out []float32) {
	if dh == 0 || dw == 0 {
		return
	}
	C.dp_resample_v((*C.float)(unsafe.Pointer(&tmp[0])), C.int(dw), C.int(ylo),
		(*C.int)(unsafe.Pointer(&f.start[0])), (*C.int)(unsafe.Pointer(&f.n[0])),
		(*C.float)(unsafe.Pointer(&f.w[0])), C.int(f.taps), C.int(dh), (*C.float)(unsafe.Pointer(&out[0])))
}
