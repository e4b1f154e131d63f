//go:build cgo && !noturbo

#include "decode_jpeg_turbo.h"

#include <string.h>

int dp_tj_header(tjhandle h, const unsigned char *src, unsigned long n,
                 int *width, int *height, int *subsamp, int *colorspace) {
	return tjDecompressHeader3(h, src, n, width, height, subsamp, colorspace);
}

/* Decodes src (already sized w×hgt by the scaling factor chosen)
 * into hwc (interleaved RGBX, w*4 bytes a row), then writes it as CHW planes
 * into chw. The chroma planes are upsampled by replication
 * (TJFLAG_FASTUPSAMPLE), as image/jpeg does, so that the cgo and pure-Go
 * builds decode the same pixels within a few levels; the accurate integer
 * IDCT is bit-exact across libjpeg-turbo's SIMD paths. */
int dp_tj_decode_chw(tjhandle h, const unsigned char *src, unsigned long n,
                     unsigned char *hwc, unsigned char *chw, int w, int hgt) {
	const int flags = TJFLAG_ACCURATEDCT | TJFLAG_FASTUPSAMPLE | TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;
	if (tjDecompress2(h, src, n, hwc, w, w * 4, hgt, TJPF_RGBX, flags) != 0) {
		return -1;
	}
	const size_t hw = (size_t)w * (size_t)hgt;
	unsigned char *r = chw, *g = chw + hw, *b = chw + 2 * hw;
	/* 4-byte pixels: the compiler vectorises this de-interleave. */
	for (size_t i = 0; i < hw; i++) {
		r[i] = hwc[4 * i];
		g[i] = hwc[4 * i + 1];
		b[i] = hwc[4 * i + 2];
	}
	return 0;
}
