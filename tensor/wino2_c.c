//go:build cgo && !noblas && linux && amd64

// The weight gradient of a 3×3 convolution at stride 1 with one pixel of
// padding, over the n images of one call (one example's rows), by
// Winograd's F(2×2, 3×3) on AVX-512 (wino2.go). Per 2×2 output tile t:
//
//	V_t = Bᵀ d_t B  (the 4×4 input tile, zero outside the image),
//	U_t = A dy_t Aᵀ (the 2×2 output-gradient tile, zero outside),
//	∇W[o][i] = Gᵀ (Σ_t U_t[o] ⊙ V_t[i]) G,
//
// Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], Aᵀ = [1 1 1 0; 0 1 −1 −1],
// G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]: 16 products per tile and channel pair
// instead of 36. The sums over tiles are 16 small GEMMs (one per element ξ
// of the 4×4 tile), run as register tiles of RB output × IB input channels;
// each tile's 16 results are transformed back and stored at once, in the
// layout of wino2.go (row o: [kh][kw][i], i fastest).
//
// Buffers (the caller's, dp_wino2_buf_len floats): V as [ξ][i-block][t][IB],
// U as [ξ][t][o], one image's zero-padded input (rows × columns ×
// channels) and output gradient, and the 16 sums of one block of input
// channels (M, [ξ][o][IB]).

#include <immintrin.h>
#include <string.h>
#include "wino2_c.h"

// The helpers pass vectors only after inlining into AVX-512 functions.
#pragma GCC diagnostic ignored "-Wpsabi"

typedef float v16 __attribute__((vector_size(64)));

__attribute__((target("avx512f"), always_inline)) static inline v16 ld(const float *p) {
	v16 v;
	memcpy(&v, p, sizeof v);
	return v;
}
__attribute__((target("avx512f"), always_inline)) static inline void st(float *p, v16 v) { memcpy(p, &v, sizeof v); }

// block returns the register tile for cin input channels: IB = 16·nv input
// channels (nv vectors) by RB = 16/nv output channels.
static long block_nv(long cin) { return cin % 64 == 0 ? 4 : cin % 32 == 0 ? 2 : 1; }

long dp_wino2_buf_len(long n, long cin, long h, long w, long cout) {
	long th = (h + 1) / 2, tw = (w + 1) / 2, t = n * th * tw;
	long hp = 2 * th + 2, wp = 2 * tw + 2;
	return 16 * t * (cin + cout) + hp * wp * cin + 4 * th * tw * cout + 16 * cout * 64;
}

int dp_wino2_supported(void) { return __builtin_cpu_supports("avx512f"); }

// Input transform of one image: xp is the image in padded HWC order (hp×wp×cin,
// zero border), V receives its tiles at tile offset t0.
__attribute__((target("avx512f"))) static void transform_x(float *V, const float *xp, long th, long tw, long wp, long cin, long ib_len,
							  long nib, long T, long t0) {
	for (long a = 0; a < th; a++)
		for (long b = 0; b < tw; b++) {
			long t = t0 + a * tw + b;
			for (long i0 = 0; i0 < cin; i0 += 16) {
				v16 d[4][4];
				for (int r = 0; r < 4; r++)
					for (int c = 0; c < 4; c++) d[r][c] = ld(xp + ((2 * a + r) * wp + 2 * b + c) * cin + i0);
				v16 e[4][4];
				for (int c = 0; c < 4; c++) {
					e[0][c] = d[0][c] - d[2][c];
					e[1][c] = d[1][c] + d[2][c];
					e[2][c] = d[2][c] - d[1][c];
					e[3][c] = d[1][c] - d[3][c];
				}
				long ib = i0 / ib_len, lane = i0 - ib * ib_len;
				for (int p = 0; p < 4; p++) {
					v16 q[4] = {e[p][0] - e[p][2], e[p][1] + e[p][2], e[p][2] - e[p][1], e[p][1] - e[p][3]};
					for (int c = 0; c < 4; c++) st(V + (((long)(4 * p + c) * nib + ib) * T + t) * ib_len + lane, q[c]);
				}
			}
		}
}

// Output-gradient transform of one image: gp is dy in HWC order over the
// tiles' 2th×2tw positions (zero beyond the image); U receives its tiles
// at tile offset t0, as [ξ][t][o].
__attribute__((target("avx512f"))) static void transform_dy(float *U, const float *gp, long th, long tw, long cout, long T, long t0) {
	long wq = 2 * tw;
	for (long a = 0; a < th; a++)
		for (long b = 0; b < tw; b++) {
			long t = t0 + a * tw + b;
			for (long o0 = 0; o0 < cout; o0 += 16) {
				v16 g[2][2];
				for (int r = 0; r < 2; r++)
					for (int c = 0; c < 2; c++) g[r][c] = ld(gp + ((2 * a + r) * wq + 2 * b + c) * cout + o0);
				v16 u[4][2] = {{g[0][0], g[0][1]}, {g[0][0] + g[1][0], g[0][1] + g[1][1]}, {g[0][0] - g[1][0], g[0][1] - g[1][1]}, {-g[1][0], -g[1][1]}};
				for (int p = 0; p < 4; p++) {
					v16 q[4] = {u[p][0], u[p][0] + u[p][1], u[p][0] - u[p][1], -u[p][1]};
					for (int c = 0; c < 4; c++) st(U + ((long)(4 * p + c) * T + t) * cout + o0, q[c]);
				}
			}
		}
}

// transpose16 stores the 16×16 block whose row r (16 floats) is at
// src + r·lds as 16 rows of dst, row z at dst + z·ldd (row z holds column
// z of the block): unpacks of 32- and 64-bit pairs, then 128-bit lanes.
__attribute__((target("avx512f"))) static void transpose16(float *dst, long ldd, const float *src, long lds) {
	__m512 r[16], a[16], b[16];
	for (int k = 0; k < 16; k++) r[k] = _mm512_loadu_ps(src + k * lds);
	for (int k = 0; k < 8; k++) {
		a[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
		a[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
	}
	// b[4k+c], 128-bit lane l: rows 4k … 4k+3 of column 4l+c.
	for (int k = 0; k < 4; k++) {
		__m512d a0 = _mm512_castps_pd(a[4 * k]), a1 = _mm512_castps_pd(a[4 * k + 1]);
		__m512d a2 = _mm512_castps_pd(a[4 * k + 2]), a3 = _mm512_castps_pd(a[4 * k + 3]);
		b[4 * k + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
		b[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
		b[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
		b[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
	}
	for (int c = 0; c < 4; c++) {
		__m512 s0 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x88), s1 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xDD);
		__m512 s2 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x88), s3 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xDD);
		_mm512_storeu_ps(dst + (0 + c) * ldd, _mm512_shuffle_f32x4(s0, s2, 0x88));
		_mm512_storeu_ps(dst + (8 + c) * ldd, _mm512_shuffle_f32x4(s0, s2, 0xDD));
		_mm512_storeu_ps(dst + (4 + c) * ldd, _mm512_shuffle_f32x4(s1, s3, 0x88));
		_mm512_storeu_ps(dst + (12 + c) * ldd, _mm512_shuffle_f32x4(s1, s3, 0xDD));
	}
}

// to_hwc copies the c×h×w planes of src (c a multiple of 16) into dst as
// rows of c channels, pixel (y, z) at dst[(y + off)·ldr + (z + off)·c]:
// 16×16 blocks, the columns past the last full block one by one.
__attribute__((target("avx512f"))) static void to_hwc(float *dst, const float *src, long c, long h, long w, long ldr, long off) {
	for (long y = 0; y < h; y++) {
		long z0 = 0;
		for (; z0 + 16 <= w; z0 += 16)
			for (long i0 = 0; i0 < c; i0 += 16)
				transpose16(dst + (y + off) * ldr + (z0 + off) * c + i0, c, src + (i0 * h + y) * w + z0, h * w);
		for (long i = 0; i < c; i++) {
			const float *s = src + (i * h + y) * w;
			float *d = dst + (y + off) * ldr + i;
			for (long z = z0; z < w; z++) d[(z + off) * c] = s[z];
		}
	}
}

// sums_NV adds, for one ξ and one block of IB = 16·NV input channels, the
// products of tiles [t0, t1) into M (cout rows of IB floats; set instead of
// added when first): register tiles of RB = 16/NV output channels by IB,
// all output channels in turn over the same tiles (which stay in L1).
#define WINO2_SUMS(NV)                                                                                                   \
	__attribute__((target("avx512f"))) static void sums_##NV(float *M, const float *u, const float *v, long cout, long t0, \
								  long t1, int first) {                                        \
		enum { RB = 16 / NV, IB = 16 * NV };                                                                     \
		for (long o0 = 0; o0 < cout; o0 += RB) {                                                                 \
			v16 acc[RB][NV];                                                                                 \
			for (int r = 0; r < RB; r++)                                                                     \
				for (int k = 0; k < NV; k++) acc[r][k] = first ? (v16){0} : ld(M + (o0 + r) * IB + 16 * k); \
			for (long t = t0; t < t1; t++) {                                                                 \
				v16 vv[NV];                                                                              \
				for (int k = 0; k < NV; k++) vv[k] = ld(v + t * IB + 16 * k);                            \
				for (int r = 0; r < RB; r++) {                                                           \
					float s = u[t * cout + o0 + r];                                                  \
					for (int k = 0; k < NV; k++) acc[r][k] += s * vv[k];                             \
				}                                                                                        \
			}                                                                                                \
			for (int r = 0; r < RB; r++)                                                                     \
				for (int k = 0; k < NV; k++) st(M + (o0 + r) * IB + 16 * k, acc[r][k]);                  \
		}                                                                                                        \
	}
WINO2_SUMS(1)
WINO2_SUMS(2)
WINO2_SUMS(4)

// inverse transforms the 16 sums M[ξ] (each cout×ib_len) of one block of
// input channels (from i0) into the gradient's rows: ∇W = Gᵀ M G.
__attribute__((target("avx512f"))) static void inverse(float *dw, const float *M, long cout, long cin, long ib_len, long i0) {
	long ms = cout * ib_len;
	for (long o = 0; o < cout; o++)
		for (long k = 0; k < ib_len; k += 16) {
			v16 m[16];
			for (int xi = 0; xi < 16; xi++) m[xi] = ld(M + xi * ms + o * ib_len + k);
			v16 R[3][4];
			for (int q = 0; q < 4; q++) {
				v16 s12 = 0.5f * (m[4 + q] + m[8 + q]);
				R[0][q] = m[q] + s12;
				R[1][q] = 0.5f * (m[4 + q] - m[8 + q]);
				R[2][q] = s12 + m[12 + q];
			}
			float *row = dw + o * 9 * cin + i0 + k;
			for (int p = 0; p < 3; p++) {
				v16 s12 = 0.5f * (R[p][1] + R[p][2]);
				st(row + (3 * p + 0) * cin, R[p][0] + s12);
				st(row + (3 * p + 1) * cin, 0.5f * (R[p][1] - R[p][2]));
				st(row + (3 * p + 2) * cin, s12 + R[p][3]);
			}
		}
}

int dp_wino2_wgrad(float *dw, const float *x, const float *dy, long n, long cin, long h, long w, long cout, float *buf) {
	if (!__builtin_cpu_supports("avx512f") || cin % 16 || cout % 16) return 0;
	long th = (h + 1) / 2, tw = (w + 1) / 2, T = n * th * tw;
	long hp = 2 * th + 2, wp = 2 * tw + 2;
	long nv = block_nv(cin), ib_len = 16 * nv, nib = cin / ib_len;
	float *V = buf, *U = V + 16 * T * cin, *xp = U + 16 * T * cout, *gp = xp + hp * wp * cin, *M = gp + 4 * th * tw * cout;
	for (long m = 0; m < n; m++) {
		const float *xm = x + m * cin * h * w, *gm = dy + m * cout * h * w;
		memset(xp, 0, hp * wp * cin * sizeof(float));
		to_hwc(xp, xm, cin, h, w, wp * cin, 1);
		memset(gp, 0, 4 * th * tw * cout * sizeof(float));
		to_hwc(gp, gm, cout, h, w, 2 * tw * cout, 0);
		transform_x(V, xp, th, tw, wp, cin, ib_len, nib, T, m * th * tw);
		transform_dy(U, gp, th, tw, cout, T, m * th * tw);
	}
	// Tiles in blocks of tb, small enough for a block of V and U to stay
	// in L1 while every output channel passes over it.
	long tb = 8192 / (ib_len + cout);
	tb = tb < 8 ? 8 : tb;
	for (long ib = 0; ib < nib; ib++) {
		for (int xi = 0; xi < 16; xi++) {
			const float *u = U + xi * T * cout, *v = V + (xi * nib + ib) * T * ib_len;
			float *mx = M + xi * cout * ib_len;
			for (long t0 = 0; t0 < T; t0 += tb) {
				long t1 = t0 + tb < T ? t0 + tb : T;
				switch (nv) {
				case 4: sums_4(mx, u, v, cout, t0, t1, t0 == 0); break;
				case 2: sums_2(mx, u, v, cout, t0, t1, t0 == 0); break;
				default: sums_1(mx, u, v, cout, t0, t1, t0 == 0);
				}
			}
		}
		inverse(dw, M, cout, cin, ib_len, ib * ib_len);
	}
	return 1;
}
