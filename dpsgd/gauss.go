package dpsgd

import "math"

// The secure sampler's arithmetic (see SecureNoise): Box–Muller on words of
// its generator, with its own logarithm and sine/cosine of a fraction of a
// turn so that a block of pairs is one branch-free loop. gauss_c.c is the
// same loop in C, eight pairs at a time; both round every operation in the same order
// (every product that is added to something, directly or through a
// variable, is converted explicitly, so the Go compiler fuses no
// multiply-add at any GOAMD64), so both give the
// same bits (TestGaussPairsCMatchesGo). The accuracy of logUnit and
// sinCosTurn is checked against 200-bit references (TestLogUnitAccuracy,
// TestSinCosTurnAccuracy).
//
// gaussPairs (gauss_cgo.go, gauss_noc.go) releases a block: the C loop
// where the CPU has AVX-512F and DQ, this Go loop elsewhere and for the
// last np mod 8 pairs.

// gaussBlock is the number of Box–Muller pairs of one block: 2·gaussBlock
// words are drawn, then 2·gaussBlock elements released.
const gaussBlock = 1024

// radiusOneWord is the least radius word m whose uniform m·2^-64 has full
// relative precision from that one word; below it a second word is drawn.
const radiusOneWord = 1 << 53

// The polynomials: fdlibm's (log: e_log.c's Lg1…Lg7; sin, cos on
// [−π/4, π/4]: k_sin.c's S1…S6, k_cos.c's C1…C6), each with an error
// below 1 ulp on its interval. pio2Hi + pio2Lo is π/2 to about 2^-107.
const (
	ln2Hi    = 6.93147180369123816490e-01 // 0x3fe62e42fee00000
	ln2Lo    = 1.90821492927058770002e-10 // 0x3dea39ef35793c76
	lg1      = 6.666666666666735130e-01
	lg2      = 3.999999999940941908e-01
	lg3      = 2.857142874366239149e-01
	lg4      = 2.222219843214978396e-01
	lg5      = 1.818357216161805012e-01
	lg6      = 1.531383769920937332e-01
	lg7      = 1.479819860511658591e-01
	sqrtHalf = 0x1.6a09e667f3bcdp-1 // fl(√2/2)
	sn1      = -1.66666666666666324348e-01
	sn2      = 8.33333333332248946124e-03
	sn3      = -1.98412698298579493134e-04
	sn4      = 2.75573137070700676789e-06
	sn5      = -2.50507602534068634195e-08
	sn6      = 1.58969099521155010221e-10
	cs1      = 4.16666666666666019037e-02
	cs2      = -1.38888888888741095749e-03
	cs3      = 2.48015872894767294178e-05
	cs4      = -2.75573143513906633035e-07
	cs5      = 2.08757232129817482790e-09
	cs6      = -1.13596475577881948265e-11
	pio2Hi   = 0x1.921fb54442d18p0   // fl(π/2)
	pio2Lo   = 0x1.1a62633145c07p-54 // fl(π/2 − pio2Hi)
	magic52  = 0x1p52
)

// logUnit returns ln u for a normal u in (0, 1] (the sampler's radius
// uniform is at least 2^-128). It is e_log.c's algorithm without its
// special cases: u = 2^k·f1 with f1 in [√2/2, √2), s = (f1−1)/(f1+1),
// ln f1 = 2 atanh s by a degree-14 polynomial, k·ln 2 in two parts.
func logUnit(u float64) float64 {
	b := math.Float64bits(u)
	// k = biased exponent − 1022 (f1 in [0.5, 1)), without an integer
	// conversion: 2^52 + e − (2^52 + 1022) is exact.
	k := math.Float64frombits(0x4330000000000000|b>>52) - (magic52 + 1022)
	f1 := math.Float64frombits(b&(1<<52-1) | 0x3fe0000000000000)
	if f1 < sqrtHalf {
		f1 += f1
		k--
	}
	f := f1 - 1
	s := f / (2 + f)
	s2 := s * s
	s4 := s2 * s2
	t1 := float64(s2 * (lg1 + float64(s4*(lg3+float64(s4*(lg5+float64(s4*lg7)))))))
	t2 := float64(s4 * (lg2 + float64(s4*(lg4+float64(s4*lg6)))))
	r := t1 + t2
	hfsq := float64(0.5 * f * f)
	return float64(k*ln2Hi) - ((hfsq - (float64(s*(hfsq+r)) + float64(k*ln2Lo))) - f)
}

// sinCosTurn returns sin and cos of 2π·t, t = (a>>11)·2^-53 in [0, 1). The
// reduction is exact: 4t = q + j with q = round(4t) and |j| ≤ 1/2, so
// 2πt = q·π/2 + θ, θ = j·π/2 in [−π/4, π/4], carried as x + y (the product
// j·pio2Hi and its exact rounding error by a fused multiply-add, plus
// j·pio2Lo) into the kernels with their tail terms (k_sin.c, k_cos.c).
func sinCosTurn(a uint64) (sin, cos float64) {
	t4 := float64(float64(a>>11) * 0x1p-51)
	q := math.RoundToEven(t4)
	j := t4 - q
	hi := float64(j * pio2Hi)
	lo := math.FMA(j, pio2Hi, -hi) + float64(j*pio2Lo)
	x := hi + lo
	y := lo - (x - hi)
	z := x * x
	w := z * z
	v := z * x
	sr := sn2 + float64(z*(sn3+float64(z*sn4))) + float64(z*w*(sn5+float64(z*sn6)))
	st := x - ((float64(z*(float64(0.5*y)-float64(v*sr))) - y) - float64(v*sn1))
	cr := float64(z*(cs1+float64(z*(cs2+float64(z*cs3))))) + float64(w*w*(cs4+float64(z*(cs5+float64(z*cs6)))))
	hz := float64(0.5 * z)
	w1 := 1 - hz
	ct := w1 + (((1 - w1) - hz) + (float64(z*cr) - float64(x*y)))
	sin, cos = st, ct
	if q == 1 || q == 3 {
		sin, cos = ct, st
	}
	if q == 2 || q == 3 {
		sin = -sin
	}
	if q == 1 || q == 2 {
		cos = -cos
	}
	return sin, cos
}

// gaussPair returns two independent standard normal variates from the
// radius uniform u in (0, 1] and the angle word a: √(−2 ln u)·(cos, sin)
// of 2π·t.
func gaussPair(u float64, a uint64) (z0, z1 float64) {
	r := math.Sqrt(-2 * logUnit(u))
	sin, cos := sinCosTurn(a)
	return r * cos, r * sin
}

// oneWordUniform is the radius uniform of a word m ≥ radiusOneWord:
// m·2^-64 to nearest, in [2^-11, 1].
func oneWordUniform(m uint64) float64 { return float64(m) * 0x1p-64 }

// twoWordUniform is the radius uniform of a word m < radiusOneWord and a
// second word m2: (m + m2·2^-64)·2^-64, with a relative precision of
// 2^-53 down to 2^-117; 0 only when both words are 0.
func twoWordUniform(m, m2 uint64) float64 {
	return (float64(m) + float64(float64(m2)*0x1p-64)) * 0x1p-64
}

// wordSource is what the sampler draws words from (*rand.ChaCha8; a
// scripted source in tests).
type wordSource interface{ Uint64() uint64 }

// radiusUniform draws the radius uniform on (0, 1] from src: one word, a
// second when the first is below radiusOneWord, again from the start in the
// (2^-128 likely) case that both are 0.
func radiusUniform(src wordSource) float64 {
	for {
		m := src.Uint64()
		if m >= radiusOneWord {
			return oneWordUniform(m)
		}
		if u := twoWordUniform(m, src.Uint64()); u > 0 {
			return u
		}
	}
}

// releaseOne returns g·round((x + std·z)/g) in float64, ties to even; the
// last product is exact (g is a power of two), so the result is a multiple
// of g.
func releaseOne(x, z, std, g, invG float64) float64 {
	return math.RoundToEven((x+float64(std*z))*invG) * g
}

// gaussPairsGo releases pairs [lo, np) of one block of np = len(words)/2
// pairs: pair i from the radius word words[i] and the angle word
// words[np+i], its two variates added to d[i] and d[np+i]. Pairs whose
// radius word is below radiusOneWord are left as they are and counted
// (fixFlagged releases them). It is the Go twin of dp_gauss_pairs_f32/f64
// (gauss_c.c), which release pairs [0, lo) where the CPU has AVX-512.
func gaussPairsGo[T float32 | float64](d []T, words []uint64, lo int, std, g, invG float64) int {
	np := len(words) / 2
	if len(d) != 2*np {
		usagef("gaussPairs", "%d elements for %d words", len(d), len(words))
	}
	flagged := 0
	for i := lo; i < np; i++ {
		m := words[i]
		if m < radiusOneWord {
			flagged++
			continue
		}
		z0, z1 := gaussPair(oneWordUniform(m), words[np+i])
		d[i] = T(releaseOne(float64(d[i]), z0, std, g, invG))
		d[np+i] = T(releaseOne(float64(d[np+i]), z1, std, g, invG))
	}
	return flagged
}

// fixFlagged releases the pairs of a block that gaussPairs left: each
// draws its second radius word (and starts over from fresh words in the
// case both are 0) from src; the angle word stays the block's.
func fixFlagged[T float32 | float64](d []T, words []uint64, src wordSource, std, g, invG float64) {
	np := len(words) / 2
	for i, m := range words[:np] {
		if m >= radiusOneWord {
			continue
		}
		u := twoWordUniform(m, src.Uint64())
		if u == 0 {
			u = radiusUniform(src)
		}
		z0, z1 := gaussPair(u, words[np+i])
		d[i] = T(releaseOne(float64(d[i]), z0, std, g, invG))
		d[np+i] = T(releaseOne(float64(d[np+i]), z1, std, g, invG))
	}
}
