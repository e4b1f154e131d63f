//go:build cgo && !noblas && linux && amd64

package tensor

/*
#cgo CFLAGS: -O3
#include "elementwise_c.h"
*/
import "C"

import "unsafe"

// cKernelMin is the length from which the elementwise kernels call their
// vectorised C versions (elementwise_c.c): below it the cgo call costs more
// than it saves. Both versions give the same bits, so the switch is not
// visible in results (TestElementwiseCMatchesGo).
const cKernelMin = 256

const haveCKernels = true

func fp(s []float32) *C.float { return (*C.float)(unsafe.Pointer(&s[0])) }

func reluC(dst, x []float32)         { C.dp_relu(fp(dst), fp(x), C.long(len(dst))) }
func reluMaskC(dst, dy, y []float32) { C.dp_relu_mask(fp(dst), fp(dy), fp(y), C.long(len(dst))) }
func addC(dst, a, b []float32)       { C.dp_add(fp(dst), fp(a), fp(b), C.long(len(dst))) }
func addReLUC(dst, a, b []float32)   { C.dp_add_relu(fp(dst), fp(a), fp(b), C.long(len(dst))) }
func affineC(dst, x []float32, m, a, b float32) {
	C.dp_affine(fp(dst), fp(x), C.float(m), C.float(a), C.float(b), C.long(len(dst)))
}
func combineC(dst, dy, x []float32, m, a, b, c float32) {
	C.dp_combine(fp(dst), fp(dy), fp(x), C.float(m), C.float(a), C.float(b), C.float(c), C.long(len(dst)))
}

func sumC(x []float32) float64 { return float64(C.dp_sum(fp(x), C.long(len(x)))) }

func tanhC(dst, x []float32) { C.dp_tanh(fp(dst), fp(x), C.long(len(dst))) }
func tanhBackwardC(dst, dy, y []float32) {
	C.dp_tanh_backward(fp(dst), fp(dy), fp(y), C.long(len(dst)))
}

func centeredMomentsC(x []float32, m float32) (s1, s2 float64) {
	r := C.dp_centered_moments(fp(x), C.float(m), C.long(len(x)))
	return float64(r.a), float64(r.b)
}

func centeredDotsC(dy, x []float32, m float32) (sdy, sdyx float64) {
	r := C.dp_centered_dots(fp(dy), fp(x), C.float(m), C.long(len(dy)))
	return float64(r.a), float64(r.b)
}

func sumSquaresC(x []float32) float64 { return float64(C.dp_sum_squares(fp(x), C.long(len(x)))) }

func axpyC(dst []float32, a float32, x []float32) {
	C.dp_axpy(fp(dst), C.float(a), fp(x), C.long(len(dst)))
}

func wsRowStatsC(g, w []float32) WSStats {
	r := C.dp_ws_row_stats(fp(g), fp(w), C.long(len(g)))
	return WSStats{SumSq: float64(r.sq), Sum: float64(r.sum), SumAbs: float64(r.abs), Dot: float64(r.dot), DotAbs: float64(r.dotabs)}
}

func wsRowC(dst, g, w []float32, inv float64, add bool) {
	a := C.int(0)
	if add {
		a = 1
	}
	C.dp_ws_row(fp(dst), fp(g), fp(w), C.long(len(dst)), C.double(inv), a)
}

func dp64(s []float64) *C.double { return (*C.double)(unsafe.Pointer(&s[0])) }

func wsGhostRowSumsC(dst []WSGhostSums, in *WSGhostInput) {
	var bias *C.float
	if in.Bias != nil {
		bias = fp(in.Bias)
	}
	// WSGhostSums is six float64 fields: the layout of double[6].
	C.dp_ws_ghost_sums((*C.double)(unsafe.Pointer(&dst[0])), fp(in.DY), C.long(in.LDY), fp(in.Z), C.long(in.ZSeg),
		C.long(in.P), C.long(in.K), C.long(in.T), dp64(in.ColSum), dp64(in.ColAbs), dp64(in.Alpha), dp64(in.Scale),
		bias, C.double(in.ZAbs), C.double(in.CY), C.double(in.CZ))
}

func wsBlockedRowStatsC(dst []WSStats, g, w []float32, l BlockedLayout) {
	// WSStats is five float64 fields: the layout of dp_ws_stats.
	C.dp_ws_blocked_stats((*C.dp_ws_stats)(unsafe.Pointer(&dst[0])), fp(g), fp(w), C.long(l.Rows), C.long(l.Block), C.long(l.Chunk))
}
