//go:build cgo && !noblas && linux && amd64

// The float64 Gram matrix of Gram64 (gram.go) on AVX-512: the factors x·s
// converted once into a zero-padded buffer, then 8×16 register tiles of the
// upper triangle accumulated over the rows (one float64 sum per entry, in
// row order, by fused multiply-adds: Gram64's bound holds for any order and
// for fused or separate products), and the lower triangle mirrored. On a
// CPU without AVX-512 dp_gram64 returns 0 and the caller converts and calls
// DsyrkSerial instead.

#include <immintrin.h>
#include "gram_c.h"

enum { TR = 8, TC = 16 };

static long pad16(long n) { return (n + TC - 1) / TC * TC; }

__attribute__((target("avx512f"))) static void gram512(double *dst, long ldd, const float *x, long rows, long n, long ldx, const float *scale, double *buf) {
	long ldb = pad16(n);
	for (long r = 0; r < rows; r++) {
		double s = scale ? (double)scale[r] : 1.0;
		const float *xr = x + r * ldx;
		double *br = buf + r * ldb;
		for (long u = 0; u < n; u++) br[u] = (double)xr[u] * s;
		for (long u = n; u < ldb; u++) br[u] = 0;
	}
	double tile[TR][TC];
	for (long i0 = 0; i0 < n; i0 += TR) {
		for (long j0 = i0 / TC * TC; j0 < n; j0 += TC) {
			__m512d c[TR][2];
			for (int ii = 0; ii < TR; ii++) c[ii][0] = c[ii][1] = _mm512_setzero_pd();
			const double *b = buf + j0, *a = buf + i0;
			for (long r = 0; r < rows; r++, a += ldb, b += ldb) {
				__m512d b0 = _mm512_loadu_pd(b), b1 = _mm512_loadu_pd(b + 8);
				for (int ii = 0; ii < TR; ii++) { // i0+ii < ldb: TR divides TC
					__m512d av = _mm512_set1_pd(a[ii]);
					c[ii][0] = _mm512_fmadd_pd(av, b0, c[ii][0]);
					c[ii][1] = _mm512_fmadd_pd(av, b1, c[ii][1]);
				}
			}
			for (int ii = 0; ii < TR; ii++) {
				_mm512_storeu_pd(tile[ii], c[ii][0]);
				_mm512_storeu_pd(tile[ii] + 8, c[ii][1]);
			}
			for (int ii = 0; ii < TR && i0 + ii < n; ii++) {
				long u = i0 + ii;
				for (int jj = 0; jj < TC && j0 + jj < n; jj++)
					if (j0 + jj >= u) dst[u * ldd + j0 + jj] = tile[ii][jj];
			}
		}
	}
	for (long u = 0; u < n; u++)
		for (long v = u + 1; v < n; v++) dst[v * ldd + u] = dst[u * ldd + v];
}

int dp_gram64_supported(void) { return __builtin_cpu_supports("avx512f"); }

int dp_gram64(double *dst, long ldd, const float *x, long rows, long n, long ldx, const float *scale, double *buf) {
	if (!__builtin_cpu_supports("avx512f")) return 0;
	gram512(dst, ldd, x, rows, n, ldx, scale, buf);
	return 1;
}

// GatherGram (gram.go), in its order: κ, then s, then t ≥ s; only
// additions, so the clones for each instruction set give the Go loop's bits.
__attribute__((target_clones("avx512f", "avx2", "default")))
void dp_gather_gram(double *dst, long n, const double *p, long m, const int *idx, long kk, int skip) {
	for (long i = 0; i < n * n; i++) dst[i] = 0;
	for (long k = 0; k < kk; k++) {
		const int *ik = idx + k * n;
		for (long s = 0; s < n; s++) {
			int u = ik[s];
			if (u == skip) continue;
			const double *prow = p + (long)u * m;
			double *grow = dst + s * n;
			for (long q = s; q < n; q++) grow[q] += prow[ik[q]];
		}
	}
}
