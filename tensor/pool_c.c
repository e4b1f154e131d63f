//go:build cgo && !noblas && linux && amd64

// MaxPoolPlane (pool.go) in C. Outputs whose window lies inside the plane
// horizontally are scanned a row at a time: for each window offset in
// row-major order, every output of the row compares its candidate's
// integer key with its best so far (a loop over the outputs that the
// compiler vectorises); the others, and windows whose first element or
// maximum is a NaN, take the per-window scan of pool.go. Both visit a
// window's elements in the same order with the same keys, so they give
// the same index.
//
// dp_maxpool_plane_rows is for strided windows that overlap (k > s > 1,
// ResNet's 3×3 stride-2 pool), where the scan above reads each input k
// times through strided loads. It splits each input row once into its s
// phases (columns x ≡ p mod s, contiguous, NaN beyond the plane), takes
// every row's horizontal window maxima from them with unit-stride loads,
// then combines the k rows of each output row. Ties go to the earlier
// column within a row and to the earlier row across rows: the first
// maximum in row-major order, the definition's. It compares floats, which
// order like the keys when there is no NaN; a plane with a NaN is handed
// to dp_maxpool_plane.

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

// dp_maxpool_rows_phase is the length of one phase row of
// dp_maxpool_plane_rows: room for every column it writes (lead + (w−1)/s)
// and every one it reads (lead + ⌊(k−1−pad)/s⌋ + ow − 1), lead of them on
// the left for the padding.
long dp_maxpool_rows_phase(long w, long ow, long k, long s, long pad) {
	long lead = (pad + s - 1) / s + 1;
	long wr = lead + (w - 1) / s, rd = lead + (k - 1 - pad) / s + ow - 1;
	return (wr > rd ? wr : rd) + 2;
}

// dp_maxpool_rows_scratch is the number of 4-byte values
// dp_maxpool_plane_rows needs: the h×ow horizontal maxima and their
// indices, s phase rows, and one row of ow running maxima.
long dp_maxpool_rows_scratch(long h, long w, long ow, long k, long s, long pad) {
	return 2 * h * ow + s * dp_maxpool_rows_phase(w, ow, k, s, pad) + ow;
}

CLONES void dp_maxpool_plane_rows(float *restrict out, int *restrict arg, const float *restrict in, long h, long w, long oh, long ow, long k, long s, long pad, int *restrict scratch) {
	long pw = dp_maxpool_rows_phase(w, ow, k, s, pad);
	long lead = (pad + s - 1) / s + 1; // phase p's entry m holds column (m − lead)·s + p
	float *restrict hk = (float *)scratch;        // h×ow horizontal maxima
	int *restrict hi = scratch + h * ow;          // and their indices in the plane (−1: none)
	float *restrict ph = (float *)scratch + 2 * h * ow; // s phase rows of pw
	float *restrict bk = ph + s * pw;             // ow running maxima of an output row
	const float nan = __builtin_nanf("");
	for (long m = 0; m < s * pw; m++) ph[m] = nan;
	long full = w / s; // phase entries lead … lead+full−1 are filled in every phase
	for (long iy = 0; iy < h; iy++) {
		const float *restrict row = in + iy * w;
		int bad = 0;
		if (s == 2) {
			float *restrict e = ph + lead, *restrict o = ph + pw + lead;
			for (long j = 0; j < full; j++) {
				float a = row[2 * j], b = row[2 * j + 1];
				e[j] = a, o[j] = b, bad |= (a != a) | (b != b);
			}
		} else {
			for (long j = 0; j < full; j++)
				for (long p = 0; p < s; p++) {
					float a = row[j * s + p];
					ph[p * pw + lead + j] = a, bad |= a != a;
				}
		}
		for (long x = full * s; x < w; x++) ph[(x % s) * pw + lead + x / s] = row[x], bad |= row[x] != row[x];
		if (bad) {
			dp_maxpool_plane(out, arg, in, h, w, oh, ow, k, s, pad, scratch, scratch + ow);
			return;
		}
		float *restrict k0 = hk + iy * ow;
		int *restrict i0 = hi + iy * ow;
		for (long q = 0; q < ow; q++) k0[q] = -__builtin_inff(), i0[q] = -1;
		for (long kj = 0; kj < k; kj++) {
			long off = kj - pad;              // window column of output q: q·s + off
			long p = ((off % s) + s) % s, d = (off - p) / s; // = (q + d)·s + p
			const float *restrict src = ph + p * pw + lead + d;
			int base = (int)(iy * w + d * s + p);
			for (long q = 0; q < ow; q++) {
				float v = src[q]; // NaN: outside the plane
				int m = (v > k0[q]) | ((i0[q] < 0) & (v == v));
				k0[q] = m ? v : k0[q];
				i0[q] = m ? base + (int)(q * s) : i0[q];
			}
		}
	}
	for (long oy = 0; oy < oh; oy++) {
		long y0 = oy * s - pad, y1 = y0 + k < h ? y0 + k : h;
		if (y0 < 0) y0 = 0;
		int *restrict a = arg + oy * ow;
		float *restrict o = out + oy * ow;
		if (y0 >= y1) {
			for (long q = 0; q < ow; q++) o[q] = -__builtin_inff(), a[q] = -1;
			continue;
		}
		for (long q = 0; q < ow; q++) bk[q] = hk[y0 * ow + q], a[q] = hi[y0 * ow + q];
		for (long iy = y0 + 1; iy < y1; iy++) {
			const float *restrict kr = hk + iy * ow;
			const int *restrict ir = hi + iy * ow;
			for (long q = 0; q < ow; q++) {
				int m = kr[q] > bk[q];
				bk[q] = m ? kr[q] : bk[q];
				a[q] = m ? ir[q] : a[q];
			}
		}
		for (long q = 0; q < ow; q++) o[q] = a[q] >= 0 ? bk[q] : -__builtin_inff();
	}
}
