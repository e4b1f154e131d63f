//go:build cgo

#include "resize_c.h"

/* Never fuse a product into a sum (cgo refuses -ffp-contract=off as a
 * flag): GCC's pragma, and the standard one for clang. */
#pragma GCC optimize("fp-contract=off")
#pragma STDC FP_CONTRACT OFF

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

/* clampU8: v + 0.5 clamped to [0, 255], truncated (as clampU8 in resize.go). */
void dp_clamp_u8(const float *v, unsigned char *dst, long n) {
	for (long i = 0; i < n; i++) {
		float t = v[i] + 0.5f;
		t = t <= 0 ? 0 : t;
		t = t >= 255 ? 255 : t;
		dst[i] = (unsigned char)(int)t;
	}
}

void dp_resample_vu8(const unsigned char *plane, int sw, int xlo, int cols, const int *start,
                     const int *n, const float *w, int taps, int dh, float *tmp) {
	for (int y = 0; y < dh; y++) {
		const float *wy = w + (long)y * taps;
		float *trow = tmp + (long)y * cols;
		for (int x = 0; x < cols; x++) {
			trow[x] = 0;
		}
		for (int k = 0; k < n[y]; k++) {
			const float wk = wy[k];
			const unsigned char *srow = plane + (long)(start[y] + k) * sw + xlo;
			for (int x = 0; x < cols; x++) {
				trow[x] += wk * (float)srow[x];
			}
		}
	}
}

void dp_resample_hf(const float *tmp, int cols, int xlo, const int *start, const int *n,
                    const float *w, int taps, int dw, int dh, float *out) {
	for (int y = 0; y < dh; y++) {
		const float *trow = tmp + (long)y * cols;
		float *orow = out + (long)y * dw;
		for (int o = 0; o < dw; o++) {
			const float *s = trow + (start[o] - xlo);
			const float *wo = w + (long)o * taps;
			float acc = 0;
			for (int k = 0; k < n[o]; k++) {
				acc += wo[k] * s[k];
			}
			orow[o] = acc;
		}
	}
}
