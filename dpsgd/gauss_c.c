//go:build cgo && !noblas && linux && amd64

// The secure sampler's block loop (gauss.go's gaussPairsGo) in AVX-512,
// eight pairs per iteration, on CPUs with AVX-512F and DQ (DQ for the
// conversion of 64-bit words to float64); elsewhere dp_gauss_supported is 0
// and the Go loop runs. Every lane does the Go twin's operations in the same
// order, each rounded on its own (IEEE +, −, ×, ÷, √, exact conversions and
// bit operations; no fused multiply-add but the explicit one), so both give the same bits
// (TestGaussPairsCMatchesGo). GCC's vector extensions write the lanes'
// arithmetic; the square root and the one fused multiply-add (math.FMA in
// Go) are intrinsics (the scalar square root sets errno, which keeps GCC
// from vectorising it, and cgo does not allow -fno-math-errno).

#pragma GCC optimize("fp-contract=off")
#ifdef __clang__
#pragma clang fp contract(off)
#endif
#pragma GCC diagnostic ignored "-Wpsabi"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include "gauss_c.h"

static const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
static const double lg1 = 6.666666666666735130e-01, lg2 = 3.999999999940941908e-01, lg3 = 2.857142874366239149e-01,
                    lg4 = 2.222219843214978396e-01, lg5 = 1.818357216161805012e-01, lg6 = 1.531383769920937332e-01,
                    lg7 = 1.479819860511658591e-01;
static const double sqrt_half = 0x1.6a09e667f3bcdp-1;
static const double sn1 = -1.66666666666666324348e-01, sn2 = 8.33333333332248946124e-03, sn3 = -1.98412698298579493134e-04,
                    sn4 = 2.75573137070700676789e-06, sn5 = -2.50507602534068634195e-08, sn6 = 1.58969099521155010221e-10;
static const double cs1 = 4.16666666666666019037e-02, cs2 = -1.38888888888741095749e-03, cs3 = 2.48015872894767294178e-05,
                    cs4 = -2.75573143513906633035e-07, cs5 = 2.08757232129817482790e-09, cs6 = -1.13596475577881948265e-11;
static const double pio2_hi = 0x1.921fb54442d18p0, pio2_lo = 0x1.1a62633145c07p-54;

#define TARGET __attribute__((target("avx512f,avx512dq")))

typedef double vd __attribute__((vector_size(64)));
typedef uint64_t vu __attribute__((vector_size(64)));
typedef int64_t vl __attribute__((vector_size(64))); // comparison masks: all ones or 0 per lane

static inline TARGET vd splat(double v) { return (vd){v, v, v, v, v, v, v, v}; }
static inline TARGET vu usplat(uint64_t v) { return (vu){v, v, v, v, v, v, v, v}; }
// sel returns a where m is all ones, b where it is 0.
static inline TARGET vd sel(vl m, vd a, vd b) { return (vd)(((vu)a & (vu)m) | ((vu)b & ~(vu)m)); }
static inline TARGET vd vabs(vd x) { return (vd)((vu)x & usplat(0x7fffffffffffffffull)); }

// round_even is Go's math.RoundToEven per lane: below 2^52 in magnitude,
// |w| + 2^52 rounds to the nearest integer, ties to even (its spacing is 1)
// and the subtraction is exact; from 2^52 on (and for Inf, NaN) w is
// already its own rounding; the sign is w's, so −0.3 gives −0 as in Go.
static inline TARGET vd round_even(vd w) {
	vd a = vabs(w);
	vd r = (a + splat(0x1p52)) - splat(0x1p52);
	r = sel((vl)(a < splat(0x1p52)), r, a);
	return (vd)(((vu)r & usplat(0x7fffffffffffffffull)) | ((vu)w & usplat(0x8000000000000000ull)));
}

// log_unit is gauss.go's logUnit per lane.
static inline TARGET vd log_unit(vd u) {
	vu b = (vu)u;
	vd k = (vd)(usplat(0x4330000000000000ull) | (b >> 52)) - splat(0x1p52 + 1022);
	vd f1 = (vd)((b & usplat((1ull << 52) - 1)) | usplat(0x3fe0000000000000ull));
	vl small = (vl)(f1 < splat(sqrt_half));
	f1 = sel(small, f1 + f1, f1);
	k = sel(small, k - splat(1), k);
	vd f = f1 - splat(1);
	vd s = f / (splat(2) + f);
	vd s2 = s * s, s4 = s2 * s2;
	vd t1 = s2 * (splat(lg1) + s4 * (splat(lg3) + s4 * (splat(lg5) + s4 * splat(lg7))));
	vd t2 = s4 * (splat(lg2) + s4 * (splat(lg4) + s4 * splat(lg6)));
	vd r = t1 + t2;
	vd hfsq = splat(0.5) * f * f;
	return k * splat(ln2_hi) - ((hfsq - (s * (hfsq + r) + k * splat(ln2_lo))) - f);
}

// pair8 is gauss.go's gaussPair on eight one-word radius uniforms.
static inline TARGET void pair8(vu m, vu a, vd *z0, vd *z1) {
	vd u = __builtin_convertvector(m, vd) * splat(0x1p-64);
	vd r = (vd)_mm512_sqrt_pd((__m512d)(splat(-2) * log_unit(u)));
	vd t4 = __builtin_convertvector(a >> 11, vd) * splat(0x1p-51);
	vd q = round_even(t4);
	vd j = t4 - q;
	vd hi = j * splat(pio2_hi);
	vd lo = (vd)_mm512_fmadd_pd((__m512d)j, (__m512d)splat(pio2_hi), (__m512d)(-hi)) + j * splat(pio2_lo);
	vd x = hi + lo;
	vd y = lo - (x - hi);
	vd z = x * x, w = z * z, v = z * x;
	vd sr = splat(sn2) + z * (splat(sn3) + z * splat(sn4)) + z * w * (splat(sn5) + z * splat(sn6));
	vd st = x - ((z * (splat(0.5) * y - v * sr) - y) - v * splat(sn1));
	vd cr = z * (splat(cs1) + z * (splat(cs2) + z * splat(cs3))) + w * w * (splat(cs4) + z * (splat(cs5) + z * splat(cs6)));
	vd hz = splat(0.5) * z;
	vd w1 = splat(1) - hz;
	vd ct = w1 + (((splat(1) - w1) - hz) + (z * cr - x * y));
	vl q1 = (vl)(q == splat(1)), q2 = (vl)(q == splat(2)), q3 = (vl)(q == splat(3));
	vl odd = q1 | q3;
	vd sn = sel(odd, ct, st), cs = sel(odd, st, ct);
	vu sign = usplat(0x8000000000000000ull);
	sn = (vd)((vu)sn ^ ((vu)(q2 | q3) & sign));
	cs = (vd)((vu)cs ^ ((vu)(q1 | q2) & sign));
	*z0 = r * cs;
	*z1 = r * sn;
}

static inline TARGET vd release8(vd x, vd z, double std, double g, double invg) {
	return round_even((x + splat(std) * z) * splat(invg)) * splat(g);
}

// step8 releases eight pairs (radius words m, angle words a) onto x0 and
// x1, keeping the lanes whose radius word is below 2^53; it returns those
// lanes' mask.
static inline TARGET vl step8(vu m, vu a, vd *x0, vd *x1, double std, double g, double invg) {
	vd z0, z1;
	pair8(m, a, &z0, &z1);
	vl fl = (vl)(m < usplat(1ull << 53));
	*x0 = sel(fl, *x0, release8(*x0, z0, std, g, invg));
	*x1 = sel(fl, *x1, release8(*x1, z1, std, g, invg));
	return fl;
}

int dp_gauss_supported(void) { return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"); }

// The kernels release pairs [0, count) of a block of np pairs (count a
// multiple of 8, at most np): pair i from words[i] (radius) and words[np+i]
// (angle), added to d[i] and d[np+i]; pairs whose radius word is below 2^53
// keep d and are counted (gauss.go's fixFlagged releases them).
TARGET long dp_gauss_pairs_f64(double *d, const uint64_t *words, long np, long count, double std, double g, double invg) {
	vl flagged = {0};
	for (long i = 0; i + 8 <= count; i += 8) {
		vu m, a;
		vd x0, x1;
		memcpy(&m, words + i, 64);
		memcpy(&a, words + np + i, 64);
		memcpy(&x0, d + i, 64);
		memcpy(&x1, d + np + i, 64);
		flagged -= step8(m, a, &x0, &x1, std, g, invg);
		memcpy(d + i, &x0, 64);
		memcpy(d + np + i, &x1, 64);
	}
	long n = 0;
	for (int l = 0; l < 8; l++) n += flagged[l];
	return n;
}

TARGET long dp_gauss_pairs_f32(float *d, const uint64_t *words, long np, long count, double std, double g, double invg) {
	typedef float vf __attribute__((vector_size(32)));
	vl flagged = {0};
	for (long i = 0; i + 8 <= count; i += 8) {
		vu m, a;
		vf f0, f1;
		memcpy(&m, words + i, 64);
		memcpy(&a, words + np + i, 64);
		memcpy(&f0, d + i, 32);
		memcpy(&f1, d + np + i, 32);
		vd x0 = __builtin_convertvector(f0, vd), x1 = __builtin_convertvector(f1, vd);
		// float32 → float64 → float32 is exact: a flagged pair comes back unchanged.
		flagged -= step8(m, a, &x0, &x1, std, g, invg);
		f0 = __builtin_convertvector(x0, vf);
		f1 = __builtin_convertvector(x1, vf);
		memcpy(d + i, &f0, 32);
		memcpy(d + np + i, &f1, 32);
	}
	long n = 0;
	for (int l = 0; l < 8; l++) n += flagged[l];
	return n;
}
