//go:build cgo && !noblas && linux && amd64

package tensor

/*
#cgo CFLAGS: -O3
#include "wino2_c.h"
*/
import "C"

import "sync"

// wino2Supported reports whether the CPU runs the AVX-512 kernel of
// WinogradWeightGrad (asked once).
var wino2Supported = sync.OnceValue(func() bool { return C.dp_wino2_supported() != 0 })

func wino2BufLen(n, cin, h, w, cout int) int {
	return int(C.dp_wino2_buf_len(C.long(n), C.long(cin), C.long(h), C.long(w), C.long(cout)))
}

func wino2C(dw, x, dy []float32, n, cin, h, w, cout int, buf []float32) {
	ok := C.dp_wino2_wgrad(fp(dw), fp(x), fp(dy), C.long(n), C.long(cin), C.long(h), C.long(w), C.long(cout), fp(buf))
	if ok == 0 {
		panic("tensor: WinogradWeightGrad: the AVX-512 kernel refused its shape")
	}
}
