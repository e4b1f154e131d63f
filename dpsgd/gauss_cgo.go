//go:build cgo && !noblas && linux && amd64

package dpsgd

/*
#cgo CFLAGS: -O3
#include "gauss_c.h"
*/
import "C"

import "unsafe"

// gaussC says the block loop runs in C (gauss_c.c): the CPU has AVX-512F
// and AVX-512DQ.
var gaussC = C.dp_gauss_supported() != 0

// gaussPairs releases a block (gaussPairsGo): pairs [0, np−np mod 8) in C
// where gaussC, the rest in Go.
func gaussPairs[T float32 | float64](d []T, words []uint64, std, g, invG float64) int {
	np := len(words) / 2
	if len(d) != 2*np {
		usagef("gaussPairs", "%d elements for %d words", len(d), len(words))
	}
	count := np &^ 7
	if !gaussC || count == 0 {
		return gaussPairsGo(d, words, 0, std, g, invG)
	}
	return gaussPairsC(d, words, count, std, g, invG) + gaussPairsGo(d, words, count, std, g, invG)
}

// gaussPairsC releases pairs [0, count) of the block in C; count is a
// multiple of 8, gaussC must hold.
func gaussPairsC[T float32 | float64](d []T, words []uint64, count int, std, g, invG float64) int {
	np := len(words) / 2
	w := (*C.uint64_t)(unsafe.Pointer(&words[0]))
	switch d := any(d).(type) {
	case []float32:
		return int(C.dp_gauss_pairs_f32((*C.float)(unsafe.Pointer(&d[0])), w, C.long(np), C.long(count), C.double(std), C.double(g), C.double(invG)))
	case []float64:
		return int(C.dp_gauss_pairs_f64((*C.double)(unsafe.Pointer(&d[0])), w, C.long(np), C.long(count), C.double(std), C.double(g), C.double(invG)))
	}
	panic("unreachable")
}
