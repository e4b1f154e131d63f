//go:build cgo && !noblas && linux && amd64

// MaxPoolPlane (pool.go) in C. Outputs whose window lies inside the plane
// horizontally are scanned a row at a time: for each window offset in
// row-major order, every output of the row compares its candidate's
// integer key with its best so far (a loop over the outputs that the
// compiler vectorises); the others, and windows whose first element or
// maximum is a NaN, take the per-window scan of pool.go. Both visit a
// window's elements in the same order with the same keys, so they give
// the same index.

#include <stdint.h>
#include <string.h>
#include "pool_c.h"

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

static inline int key(float v) {
	int32_t b;
	memcpy(&b, &v, 4);
	int32_t m = b >> 31;
	return (int)(((b & 0x7fffffff) ^ m) - m);
}

static int argmax_float(const float *in, long w, long y0, long y1, long x0, long x1) {
	int bi = (int)(y0 * w + x0);
	float best = in[bi];
	for (long iy = y0; iy < y1; iy++)
		for (long ix = x0; ix < x1; ix++)
			if (in[iy * w + ix] > best) best = in[iy * w + ix], bi = (int)(iy * w + ix);
	return bi;
}

static int argmax_window(const float *in, long w, long y0, long y1, long x0, long x1) {
	int bi = (int)(y0 * w + x0);
	float first = in[bi];
	int bk = key(first);
	for (long iy = y0; iy < y1; iy++)
		for (long ix = x0; ix < x1; ix++) {
			int kv = key(in[iy * w + ix]);
			int m = -(kv > bk);
			bk ^= (bk ^ kv) & m;
			bi ^= (bi ^ (int)(iy * w + ix)) & m;
		}
	if (first == first && in[bi] == in[bi]) return bi;
	return argmax_float(in, w, y0, y1, x0, x1);
}

CLONES void dp_maxpool_plane(float *out, int *arg, const float *in, long h, long w, long oh, long ow, long k, long s, long pad, int *bk, int *bi) {
	// interior columns [oxa, oxb): ox·s − pad ≥ 0 and ox·s − pad + k ≤ w
	long oxa = (pad + s - 1) / s, oxb = w + pad - k >= 0 ? (w + pad - k) / s + 1 : 0;
	if (oxa > ow) oxa = ow;
	if (oxb > ow) oxb = ow;
	if (oxb < oxa) oxb = oxa;
	for (long oy = 0; oy < oh; oy++) {
		long y0 = oy * s - pad, y1 = y0 + k < h ? y0 + k : h;
		if (y0 < 0) y0 = 0;
		float *orow = out + oy * ow;
		int *arow = arg + oy * ow;
		for (long ox = 0; ox < ow; ox++) {
			if (ox >= oxa && ox < oxb) continue;
			long x0 = ox * s - pad, x1 = x0 + k < w ? x0 + k : w;
			if (x0 < 0) x0 = 0;
			if (y0 >= y1 || x0 >= x1) {
				orow[ox] = -__builtin_inff(), arow[ox] = -1;
				continue;
			}
			int b = argmax_window(in, w, y0, y1, x0, x1);
			orow[ox] = in[b], arow[ox] = b;
		}
		if (oxa >= oxb) continue;
		if (y0 >= y1) {
			for (long ox = oxa; ox < oxb; ox++) orow[ox] = -__builtin_inff(), arow[ox] = -1;
			continue;
		}
		long n = oxb - oxa;
		const float *first = in + y0 * w + oxa * s - pad;
		int firstIdx = (int)(y0 * w + oxa * s - pad);
		for (long q = 0; q < n; q++) bk[q] = key(first[q * s]), bi[q] = firstIdx + (int)(q * s);
		for (long iy = y0; iy < y1; iy++)
			for (long kj = 0; kj < k; kj++) {
				const float *row = in + iy * w + oxa * s - pad + kj;
				int base = (int)(iy * w + oxa * s - pad + kj);
				for (long q = 0; q < n; q++) {
					int kv = key(row[q * s]);
					int m = -(kv > bk[q]);
					bk[q] ^= (bk[q] ^ kv) & m;
					bi[q] ^= (bi[q] ^ (base + (int)(q * s))) & m;
				}
			}
		for (long q = 0; q < n; q++) {
			long ox = oxa + q;
			int b = bi[q];
			float f = first[q * s];
			if (!(f == f && in[b] == in[b])) b = argmax_float(in, w, y0, y1, ox * s - pad, ox * s - pad + k);
			orow[ox] = in[b], arow[ox] = b;
		}
	}
}
