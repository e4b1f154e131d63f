//go:build cgo

#include "resize_c.h"

/* Never fuse a product into a sum (cgo refuses -ffp-contract=off as a flag). */
#pragma GCC optimize("fp-contract=off")

/* The resampler's two passes, as resampleHGo and resampleVGo in resize.go:
 * the same sums in the same order, in float32, each product rounded (no
 * fused multiply-add), so the same bits. */

void dp_resample_h(const unsigned char *rows, int nrows, int sw, const int *start,
                   const int *n, const float *w, int taps, int dw, float *tmp) {
	for (int y = 0; y < nrows; y++) {
		const unsigned char *srow = rows + (long)y * sw;
		float *trow = tmp + (long)y * dw;
		for (int o = 0; o < dw; o++) {
			const unsigned char *s = srow + start[o];
			const float *wo = w + (long)o * taps;
			float acc = 0;
			for (int k = 0; k < n[o]; k++) {
				acc += wo[k] * (float)s[k];
			}
			trow[o] = acc;
		}
	}
}

void dp_resample_v(const float *tmp, int dw, int ylo, const int *start, const int *n,
                   const float *w, int taps, int dh, float *out) {
	for (int y = 0; y < dh; y++) {
		const float *wy = w + (long)y * taps;
		const float *base = tmp + (long)(start[y] - ylo) * dw;
		float *orow = out + (long)y * dw;
		for (int o = 0; o < dw; o++) {
			orow[o] = 0;
		}
		for (int k = 0; k < n[y]; k++) {
			const float wk = wy[k];
			const float *trow = base + (long)k * dw;
			for (int o = 0; o < dw; o++) {
				orow[o] += wk * trow[o];
			}
		}
	}
}
