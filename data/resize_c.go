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

// clampU8Plane is clampU8PlaneGo in C.
func clampU8Plane(v []float32, dst []uint8) {
	if len(dst) == 0 {
		return
	}
	C.dp_clamp_u8((*C.float)(unsafe.Pointer(&v[0])), (*C.uchar)(unsafe.Pointer(&dst[0])), C.long(len(dst)))
}

// resampleVU8 runs the source-first vertical pass in C (resampleVU8Go's bits).
func resampleVU8(plane []uint8, sw, xlo, cols int, f *filterWeights, dh int, tmp []float32) {
	if dh == 0 || cols == 0 {
		return
	}
	C.dp_resample_vu8((*C.uchar)(unsafe.Pointer(&plane[0])), C.int(sw), C.int(xlo), C.int(cols),
		(*C.int)(unsafe.Pointer(&f.start[0])), (*C.int)(unsafe.Pointer(&f.n[0])),
		(*C.float)(unsafe.Pointer(&f.w[0])), C.int(f.taps), C.int(dh), (*C.float)(unsafe.Pointer(&tmp[0])))
}

// resampleHF runs the second, horizontal pass in C (resampleHFGo's bits).
func resampleHF(tmp []float32, cols, xlo int, f *filterWeights, dw, dh int, out []float32) {
	if dh == 0 || dw == 0 {
		return
	}
	C.dp_resample_hf((*C.float)(unsafe.Pointer(&tmp[0])), C.int(cols), C.int(xlo),
		(*C.int)(unsafe.Pointer(&f.start[0])), (*C.int)(unsafe.Pointer(&f.n[0])),
		(*C.float)(unsafe.Pointer(&f.w[0])), C.int(f.taps), C.int(dw), C.int(dh), (*C.float)(unsafe.Pointer(&out[0])))
}
