//go:build cgo && !noturbo

package data

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdlib.h>
#include "decode_jpeg_turbo.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"strings"
	"sync"
	"unsafe"
)

// jpegDecoder names the JPEG decoder of this build.
const jpegDecoder = "libjpeg-turbo"

// turboHandles keeps libjpeg-turbo decompressors for reuse (a handle is
// about 10 KB of C memory with its own error state; one per concurrent
// decode). Handles beyond the pool's capacity are destroyed.
var turboHandles = make(chan C.tjhandle, 64)

func getTurbo() (C.tjhandle, error) {
	select {
	case h := <-turboHandles:
		return h, nil
	default:
	}
	h := C.tjInitDecompress()
	if h == nil {
		return nil, errors.New("libjpeg-turbo: cannot create a decompressor (out of memory?)")
	}
	return h, nil
}

func putTurbo(h C.tjhandle, failed bool) {
	if failed {
		// A handle that reported an error may keep state from it (seen:
		// the next header read failing with the previous image's error):
		// never reuse one.
		C.tjDestroy(h)
		return
	}
	select {
	case turboHandles <- h:
	default:
		C.tjDestroy(h)
	}
}

// hwcPool holds the interleaved-RGBX buffers libjpeg-turbo decodes into
// before the CHW transpose (at most maxScratchBytes are kept).
var hwcPool sync.Pool

// decodeJPEG decodes with libjpeg-turbo (accurate integer IDCT, chroma
// upsampled by replication as image/jpeg does, warnings such as a
// truncated file treated as errors, progressive scans limited), scaled in
// the DCT domain by the factor JPEGReduction gives for minSide.
// CMYK and YCCK JPEGs, which libjpeg-turbo cannot convert to RGB, go
// through image/jpeg.
func decodeJPEG(b []byte, dst []uint8, minSide int) (pix []uint8, h, w int, err error) {
	th, err := getTurbo()
	if err != nil {
		return nil, 0, 0, err
	}
	defer func() { putTurbo(th, err != nil) }()
	src := (*C.uchar)(unsafe.Pointer(&b[0]))
	var cw, ch, sub, cs C.int
	if C.dp_tj_header(th, src, C.ulong(len(b)), &cw, &ch, &sub, &cs) != 0 {
		return nil, 0, 0, turboErr(th)
	}
	w, h = int(cw), int(ch)
	if err := checkImageSize(w, h); err != nil {
		return nil, 0, 0, err
	}
	f := JPEGReduction(h, w, minSide)
	if cs == C.TJCS_CMYK || cs == C.TJCS_YCCK {
		return decodeStd(b, dst, true, f)
	}
	sw, sh := (w+f-1)/f, (h+f-1)/f // TJSCALED with 1/f
	// libjpeg-turbo holds its component buffers (a whole coefficient
	// image for a progressive JPEG) at about the size of a YCbCr image.
	held := decodeBudget.acquire(decodeEstimate(image.Config{ColorModel: color.YCbCrModel, Width: w, Height: h}))
	defer decodeBudget.release(held)
	n := 3 * sw * sh
	pix = dst
	if cap(pix) >= n {
		pix = pix[:n]
	} else {
		pix = make([]uint8, n)
	}
	hwc, _ := hwcPool.Get().([]uint8)
	hwc = growU8(hwc, 4*sw*sh) // RGBX
	rc := C.dp_tj_decode_chw(th, src, C.ulong(len(b)), (*C.uchar)(unsafe.Pointer(&hwc[0])),
		(*C.uchar)(unsafe.Pointer(&pix[0])), C.int(sw), C.int(sh))
	if cap(hwc) <= maxScratchBytes {
		hwcPool.Put(hwc[:0])
	}
	if rc != 0 {
		return nil, 0, 0, turboErr(th)
	}
	return pix, sh, sw, nil
}

// turboErr is the handle's last error, as libjpeg-turbo words it.
func turboErr(th C.tjhandle) error {
	msg := C.GoString(C.tjGetErrorStr2(th))
	if msg == "" || msg == "No error" {
		msg = "unknown error"
	}
	if strings.HasPrefix(msg, "Unsupported") {
		// Valid but not supported (12-bit samples, say): errors.Is(err,
		// errors.ErrUnsupported) holds, as for image/jpeg's UnsupportedError.
		return fmt.Errorf("JPEG (libjpeg-turbo): %s (%w)", msg, errors.ErrUnsupported)
	}
	return fmt.Errorf("JPEG (libjpeg-turbo): %s", msg)
}
