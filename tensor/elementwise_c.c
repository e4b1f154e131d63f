//go:build cgo && !noblas && linux && amd64

// Vectorised versions of the elementwise kernels of elementwise.go, for
// long slices (elementwise_c.go). Each computes, element by element, the
// same IEEE operations in the same order as the Go kernel (no contraction
// into fused multiply-adds), so both give the same bits.
// The compiler vectorises the loops for the CPU found at run time
// (target_clones by instruction set: AVX-512F, AVX2, or the baseline).

// No fused multiply-adds: the Go loops round every product (explicit
// conversions), and the bits must agree. cgo does not pass
// -ffp-contract=off, so the pragmas say it, for gcc and for clang.
#pragma GCC optimize("fp-contract=off")
#ifdef __clang__
#pragma clang fp contract(off)
#endif
// The baseline clone passes no vectors between functions (load is inlined).
#pragma GCC diagnostic ignored "-Wpsabi"

#include <stdint.h>
#include <string.h>
#include "elementwise_c.h"

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

static inline uint32_t bits(float v) { uint32_t b; memcpy(&b, &v, 4); return b; }
static inline float fromBits(uint32_t b) { float v; memcpy(&v, &b, 4); return v; }

// Go's max(v, 0) on amd64, bit for bit: a NaN keeps its payload with the
// sign bit cleared, −0 becomes +0.
static inline float relu(float v) { return v != v ? fromBits(bits(v) & 0x7fffffffu) : (v > 0 ? v : 0.0f); }

// positive: all ones when y ∈ (0, +Inf], else 0 (elementwise.go).
static inline uint32_t positive(float y) { return (uint32_t)((int64_t)((uint64_t)(bits(y) - 1u) - 0x7f800000u) >> 63); }

CLONES void dp_relu(float *dst, const float *x, long n) {
	for (long i = 0; i < n; i++) dst[i] = relu(x[i]);
}

CLONES void dp_relu_mask(float *dst, const float *dy, const float *y, long n) {
	for (long i = 0; i < n; i++) dst[i] = fromBits(bits(dy[i]) & positive(y[i]));
}

CLONES void dp_add(float *dst, const float *a, const float *b, long n) {
	for (long i = 0; i < n; i++) dst[i] = a[i] + b[i];
}

CLONES void dp_add_relu(float *dst, const float *a, const float *b, long n) {
	for (long i = 0; i < n; i++) dst[i] = relu(a[i] + b[i]);
}

CLONES void dp_affine(float *dst, const float *x, float m, float a, float b, long n) {
	for (long i = 0; i < n; i++) dst[i] = (x[i] - m) * a + b;
}

CLONES void dp_combine(float *dst, const float *dy, const float *x, float m, float a, float b, float c, long n) {
	for (long i = 0; i < n; i++) dst[i] = a * dy[i] + b * (x[i] - m) + c;
}

// Reductions, in the order of elementwise.go: blocks of SUM_BLOCK elements;
// in each, CHAINS float32 partial sums (chain j takes elements j, j+CHAINS,
// …; the tail goes to chain 0), added by chain_total's fixed tree; the
// blocks' totals added in float64. The chains are the lanes of one GCC
// vector: lane-wise arithmetic, the Go loop's operations on any vector
// width the target has.
enum { SUM_BLOCK = 256, CHAINS = 16 };
typedef float chainvec __attribute__((vector_size(CHAINS * sizeof(float))));

static inline chainvec load(const float *p) {
	chainvec v;
	memcpy(&v, p, sizeof v);
	return v;
}

static inline float chain_total(float *a) {
	for (int w = CHAINS / 2; w >= 1; w /= 2)
		for (int j = 0; j < w; j++) a[j] += a[j + w];
	return a[0];
}

CLONES double dp_sum(const float *x, long n) {
	double s = 0;
	for (long o = 0; o < n; o += SUM_BLOCK) {
		long e = o + SUM_BLOCK < n ? o + SUM_BLOCK : n, i = o;
		chainvec va = {0};
		for (; i + CHAINS <= e; i += CHAINS) va += load(x + i);
		float a[CHAINS];
		memcpy(a, &va, sizeof a);
		for (; i < e; i++) a[0] += x[i];
		s += (double)chain_total(a);
	}
	return s;
}

CLONES dp_pair dp_centered_moments(const float *x, float m, long n) {
	double r1 = 0, r2 = 0;
	for (long o = 0; o < n; o += SUM_BLOCK) {
		long e = o + SUM_BLOCK < n ? o + SUM_BLOCK : n, i = o;
		chainvec va = {0}, vq = {0};
		for (; i + CHAINS <= e; i += CHAINS) {
			chainvec d = load(x + i) - m;
			va += d;
			vq += d * d;
		}
		float a[CHAINS], q[CHAINS];
		memcpy(a, &va, sizeof a);
		memcpy(q, &vq, sizeof q);
		for (; i < e; i++) {
			float t = x[i] - m;
			a[0] += t;
			q[0] += t * t;
		}
		r1 += (double)chain_total(a);
		r2 += (double)chain_total(q);
	}
	return (dp_pair){r1, r2};
}

CLONES dp_pair dp_centered_dots(const float *dy, const float *x, float m, long n) {
	double r1 = 0, r2 = 0;
	for (long o = 0; o < n; o += SUM_BLOCK) {
		long e = o + SUM_BLOCK < n ? o + SUM_BLOCK : n, i = o;
		chainvec va = {0}, vp = {0};
		for (; i + CHAINS <= e; i += CHAINS) {
			chainvec g = load(dy + i);
			va += g;
			vp += g * (load(x + i) - m);
		}
		float a[CHAINS], p[CHAINS];
		memcpy(a, &va, sizeof a);
		memcpy(p, &vp, sizeof p);
		for (; i < e; i++) {
			a[0] += dy[i];
			p[0] += dy[i] * (x[i] - m);
		}
		r1 += (double)chain_total(a);
		r2 += (double)chain_total(p);
	}
	return (dp_pair){r1, r2};
}

// chain_total64 is chain_total for float64 chains.
static inline double chain_total64(double *a) {
	for (int w = CHAINS / 2; w >= 1; w /= 2)
		for (int j = 0; j < w; j++) a[j] += a[j + w];
	return a[0];
}

// dp_sum_squares returns Σ x[i]² in float64 (each square exact), in 16
// float64 chains added by a fixed tree, as sumSquaresGo.
CLONES double dp_sum_squares(const float *x, long n) {
	typedef double dvec __attribute__((vector_size(CHAINS * sizeof(double))));
	dvec acc = {0};
	long i = 0;
	for (; i + CHAINS <= n; i += CHAINS) {
		chainvec v = load(x + i);
		dvec d = __builtin_convertvector(v, dvec);
		acc += d * d;
	}
	double a[CHAINS];
	memcpy(a, &acc, sizeof a);
	for (; i < n; i++) a[0] += (double)x[i] * (double)x[i];
	return chain_total64(a);
}

// dp_axpy sets dst[i] += a·x[i] (a multiply, then an add: as Go).
CLONES void dp_axpy(float *dst, float a, const float *x, long n) {
	for (long i = 0; i < n; i++) dst[i] += a * x[i];
}

// dp_ws_row sets (add: adds to) dst the weight-standardisation Jacobian
// applied to one row: (g − mean(g) − w·(g·w)/n)·inv, in float64, the sums
// Σg and Σg·w in 16 float64 chains added by a fixed tree (as wsRowGo).
CLONES void dp_ws_row(float *dst, const float *g, const float *w, long n, double inv, int add) {
	typedef double dvec __attribute__((vector_size(CHAINS * sizeof(double))));
	dvec sg = {0}, sgw = {0};
	long i = 0;
	for (; i + CHAINS <= n; i += CHAINS) {
		dvec gv = __builtin_convertvector(load(g + i), dvec);
		dvec wv = __builtin_convertvector(load(w + i), dvec);
		sg += gv;
		sgw += gv * wv;
	}
	double a[CHAINS], b[CHAINS];
	memcpy(a, &sg, sizeof a);
	memcpy(b, &sgw, sizeof b);
	for (; i < n; i++) {
		a[0] += (double)g[i];
		b[0] += (double)g[i] * (double)w[i];
	}
	double mean = chain_total64(a) / (double)n, proj = chain_total64(b) / (double)n;
	if (add)
		for (long k = 0; k < n; k++) dst[k] += (float)(((double)g[k] - mean - (double)w[k] * proj) * inv);
	else
		for (long k = 0; k < n; k++) dst[k] = (float)(((double)g[k] - mean - (double)w[k] * proj) * inv);
}

// dp_ws_row_stats returns Σg², Σg, Σ|g|, Σg·w and Σ|g·w| over one row in
// float64 (every term exact: a float32 product fits a float64), in 16 chains
// each added by a fixed tree, as wsRowStatsGo.
CLONES dp_ws_stats dp_ws_row_stats(const float *g, const float *w, long n) {
	typedef double dvec __attribute__((vector_size(CHAINS * sizeof(double))));
	typedef long long lvec __attribute__((vector_size(CHAINS * sizeof(double))));
	const lvec magnitude = (lvec){0} + 0x7fffffffffffffffLL;
	dvec sq = {0}, sum = {0}, sabs = {0}, dot = {0}, dabs = {0};
	long i = 0;
	for (; i + CHAINS <= n; i += CHAINS) {
		dvec gv = __builtin_convertvector(load(g + i), dvec);
		dvec pv = gv * __builtin_convertvector(load(w + i), dvec);
		sq += gv * gv;
		sum += gv;
		sabs += (dvec)((lvec)gv & magnitude);
		dot += pv;
		dabs += (dvec)((lvec)pv & magnitude);
	}
	double a[CHAINS], b[CHAINS], c[CHAINS], d[CHAINS], e[CHAINS];
	memcpy(a, &sq, sizeof a);
	memcpy(b, &sum, sizeof b);
	memcpy(c, &sabs, sizeof c);
	memcpy(d, &dot, sizeof d);
	memcpy(e, &dabs, sizeof e);
	for (; i < n; i++) {
		double gv = (double)g[i], pv = gv * (double)w[i];
		a[0] += gv * gv;
		b[0] += gv;
		c[0] += gv < 0 ? -gv : gv;
		d[0] += pv;
		e[0] += pv < 0 ? -pv : pv;
	}
	return (dp_ws_stats){chain_total64(a), chain_total64(b), chain_total64(c), chain_total64(d), chain_total64(e)};
}

// dp_ws_ghost_sums sets dst[6·o …] to row o's six WSGhostSums (Sig,
// SigAbs, SigErr, Rho, RhoAbs, RhoErr) for o < p, as wsGhostRowSumsGo: per
// segment 16 float64 chains (the tail to chain 0) added by a fixed tree, the
// segments' totals added in order, every product rounded once. bias may be
// NULL (no bias: b = 0 and no bias terms in e_z).
CLONES void dp_ws_ghost_sums(double *dst, const float *dy, long ldy, const float *z, long zseg, long p, long k, long t,
                             const double *colsum, const double *colabs, const double *alpha, const double *scale,
                             const float *bias, double zabs, double cy, double cz) {
	typedef double dvec __attribute__((vector_size(CHAINS * sizeof(double))));
	typedef long long lvec __attribute__((vector_size(CHAINS * sizeof(double))));
	const lvec magnitude = (lvec){0} + 0x7fffffffffffffffLL;
#define ABSV(v) ((dvec)((lvec)(v) & magnitude))
	for (long o = 0; o < p; o++) {
		double b = bias ? (double)bias[o] : 0, sc = scale[o];
		double tot[6] = {0, 0, 0, 0, 0, 0};
		for (long a = 0; a < k; a++) {
			const float *g = dy + o * ldy + a * t, *zr = z + a * zseg + o * t;
			const double *cs = colsum + a * t, *ca = colabs + a * t, *al = alpha + a * t;
			dvec v0 = {0}, v1 = {0}, v2 = {0}, v3 = {0}, v4 = {0}, v5 = {0};
			long q = 0;
			for (; q + CHAINS <= t; q += CHAINS) {
				dvec gv = __builtin_convertvector(load(g + q), dvec), csv, cav, alv;
				memcpy(&csv, cs + q, sizeof csv);
				memcpy(&cav, ca + q, sizeof cav);
				memcpy(&alv, al + q, sizeof alv);
				dvec ag = ABSV(gv);
				dvec sv = gv * csv;
				v0 += sv;
				v1 += ABSV(sv);
				v2 += ag * cav;
				dvec y = __builtin_convertvector(load(zr + q), dvec);
				dvec zd = y - b;
				dvec r = gv * zd;
				v3 += r;
				v4 += ABSV(r);
				dvec ez = sc * alv + zabs;
				if (bias) {
					ez += cy * ABSV(y);
					ez += cz * ABSV(zd);
				}
				v5 += ag * ez;
			}
			double c[6][CHAINS];
			memcpy(c[0], &v0, sizeof c[0]);
			memcpy(c[1], &v1, sizeof c[1]);
			memcpy(c[2], &v2, sizeof c[2]);
			memcpy(c[3], &v3, sizeof c[3]);
			memcpy(c[4], &v4, sizeof c[4]);
			memcpy(c[5], &v5, sizeof c[5]);
			for (; q < t; q++) {
				double gv = (double)g[q], ag = __builtin_fabs(gv);
				double sv = gv * cs[q];
				c[0][0] += sv;
				c[1][0] += __builtin_fabs(sv);
				c[2][0] += ag * ca[q];
				double y = (double)zr[q], zd = y - b, r = gv * zd;
				c[3][0] += r;
				c[4][0] += __builtin_fabs(r);
				double ez = sc * al[q] + zabs;
				if (bias) {
					ez += cy * __builtin_fabs(y);
					ez += cz * __builtin_fabs(zd);
				}
				c[5][0] += ag * ez;
			}
			for (int i = 0; i < 6; i++) tot[i] += chain_total64(c[i]);
		}
		memcpy(dst + 6 * o, tot, sizeof tot);
	}
#undef ABSV
}

// dp_ws_blocked_stats<B>: WSBlockedRowStats for lanes of B rows, as
// wsBlockedRowStatsGo (one chain per row: its lane, in order).
#define WS_BLOCKED_STATS(B)                                                                                      \
	static void ws_blocked_stats_##B(dp_ws_stats *dst, const float *g, const float *w, long rows, long chunk) {  \
		typedef double dv __attribute__((vector_size(B * sizeof(double))));                                  \
		typedef float fv __attribute__((vector_size(B * sizeof(float))));                                   \
		typedef long long lv __attribute__((vector_size(B * sizeof(double))));                              \
		const lv magnitude = (lv){0} + 0x7fffffffffffffffLL;                                                   \
		for (long ob = 0; ob * B < rows; ob++) {                                                              \
			const float *gb = g + ob * chunk, *wb = w + ob * chunk;                                            \
			dv sq = {0}, sum = {0}, sabs = {0}, dot = {0}, dabs = {0};                                        \
			for (long e = 0; e < chunk; e += B) {                                                             \
				fv gf, wf;                                                                                     \
				memcpy(&gf, gb + e, sizeof gf);                                                                \
				memcpy(&wf, wb + e, sizeof wf);                                                                \
				dv gv = __builtin_convertvector(gf, dv);                                                       \
				dv pv = gv * __builtin_convertvector(wf, dv);                                                  \
				sq += gv * gv;                                                                                 \
				sum += gv;                                                                                     \
				sabs += (dv)((lv)gv & magnitude);                                                              \
				dot += pv;                                                                                     \
				dabs += (dv)((lv)pv & magnitude);                                                              \
			}                                                                                                  \
			for (long l = 0; l < B && ob * B + l < rows; l++)                                                 \
				dst[ob * B + l] = (dp_ws_stats){sq[l], sum[l], sabs[l], dot[l], dabs[l]};                      \
		}                                                                                                      \
	}
CLONES WS_BLOCKED_STATS(16)
CLONES WS_BLOCKED_STATS(8)

void dp_ws_blocked_stats(dp_ws_stats *dst, const float *g, const float *w, long rows, long block, long chunk) {
	if (block == 16) ws_blocked_stats_16(dst, g, w, rows, chunk);
	else ws_blocked_stats_8(dst, g, w, rows, chunk);
}

// tanh as elementwise.go's Tanh computes it, in float64 with the same
// operations in the same order. 2^k is built from the bits of kf + (1.5·2⁵²
// + 1023), whose low mantissa bits hold k + 1023 (|k| ≤ 29), shifted into
// the exponent: the value Go's Float64frombits(uint64(int64(kf)+1023)<<52)
// gives, without a float-to-integer conversion (so the loop vectorises
// with AVX-512F and AVX2 alike).
CLONES void dp_tanh(float *dst, const float *x, long n) {
	const double log2e = 1.4426950408889634, ln2 = 0.6931471805599453;
	const double round = 6755399441055744.0; // 1.5·2⁵²
	const double c2 = 1.0 / 2, c3 = 1.0 / 6, c4 = 1.0 / 24, c5 = 1.0 / 120, c6 = 1.0 / 720, c7 = 1.0 / 5040;
	for (long i = 0; i < n; i++) {
		double v = (double)x[i];
		double y = 2 * v;
		y = y > 20 ? 20 : y;
		y = y < -20 ? -20 : y;
		double kf = (y * log2e + round) - round;
		double r = y - kf * ln2;
		double r2 = r * r, r4 = r2 * r2;
		double q = (1 + c2 * r) + r2 * (c3 + c4 * r) + r4 * ((c5 + c6 * r) + r2 * c7);
		double p = r * q;
		double t = kf + (round + 1023);
		uint64_t u;
		memcpy(&u, &t, 8);
		u <<= 52;
		double s;
		memcpy(&s, &u, 8);
		double e = s * p + (s - 1);
		dst[i] = (float)__builtin_copysign(e / (e + 2), v);
	}
}

CLONES void dp_tanh_backward(float *dst, const float *dy, const float *y, long n) {
	for (long i = 0; i < n; i++) dst[i] = dy[i] * (1.0f - y[i] * y[i]);
}
