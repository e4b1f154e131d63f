package dpsgd

import (
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

// refPrec is the precision of the references (bits).
const refPrec = 256

// piRef is π to 80 digits.
const piRef = "3.1415926535897932384626433832795028841971693993751058209749445923078164062862089986"

func bigf(v float64) *big.Float { return new(big.Float).SetPrec(refPrec).SetFloat64(v) }

// atanhRef returns atanh s = Σ s^(2n+1)/(2n+1) for |s| ≤ 1/3.
func atanhRef(s *big.Float) *big.Float {
	sum := new(big.Float).SetPrec(refPrec)
	s2 := new(big.Float).SetPrec(refPrec).Mul(s, s)
	pow := new(big.Float).SetPrec(refPrec).Set(s)
	eps := new(big.Float).SetPrec(refPrec).SetMantExp(big.NewFloat(1), -refPrec-8)
	for n := int64(0); ; n++ {
		term := new(big.Float).SetPrec(refPrec).Quo(pow, new(big.Float).SetInt64(2*n+1))
		sum.Add(sum, term)
		if term.Abs(term).Cmp(eps) < 0 {
			return sum
		}
		pow.Mul(pow, s2)
	}
}

// logRef returns ln u for u > 0: u = 2^e·m with m in [2/3, 4/3), ln m =
// 2 atanh((m−1)/(m+1)), ln 2 = 2 atanh(1/3).
func logRef(u float64) *big.Float {
	frac, e := math.Frexp(u) // [0.5, 1)
	if frac < 2.0/3 {
		frac *= 2
		e--
	}
	m := bigf(frac)
	one := bigf(1)
	s := new(big.Float).SetPrec(refPrec).Quo(new(big.Float).SetPrec(refPrec).Sub(m, one), new(big.Float).SetPrec(refPrec).Add(m, one))
	lnm := atanhRef(s)
	lnm.Mul(lnm, bigf(2))
	third := new(big.Float).SetPrec(refPrec).Quo(one, bigf(3))
	ln2 := atanhRef(third)
	ln2.Mul(ln2, bigf(2))
	ln2.Mul(ln2, new(big.Float).SetPrec(refPrec).SetInt64(int64(e)))
	return lnm.Add(lnm, ln2)
}

// sinCosRef returns sin and cos of 2π·t by their Taylor series (t < 1, so
// the argument is below 2π; 256 bits leave far more than 53 after the
// series' cancellation).
func sinCosRef(t float64) (sin, cos *big.Float) {
	pi, _ := new(big.Float).SetPrec(refPrec).SetString(piRef)
	x := new(big.Float).SetPrec(refPrec).Mul(pi, bigf(2*t)) // 2t exact
	sin = new(big.Float).SetPrec(refPrec)
	cos = new(big.Float).SetPrec(refPrec)
	term := bigf(1) // x^n/n!
	for n := int64(0); n < 200; n++ {
		switch n % 4 {
		case 0:
			cos.Add(cos, term)
		case 1:
			sin.Add(sin, term)
		case 2:
			cos.Sub(cos, term)
		case 3:
			sin.Sub(sin, term)
		}
		term.Mul(term, x)
		term.Quo(term, new(big.Float).SetInt64(n+1))
	}
	return sin, cos
}

// ulpErr returns |got − ref| in units of the last place of ref rounded to
// float64 (the spacing of float64 values at ref's magnitude).
func ulpErr(got float64, ref *big.Float) float64 {
	r, _ := ref.Float64()
	if math.Abs(r) < 0x1p-200 { // an exact zero (sin π), up to the reference's own error
		if got == 0 {
			return 0
		}
		return math.Inf(1)
	}
	_, e := math.Frexp(r)
	ulp := math.Ldexp(1, e-53)
	d := new(big.Float).SetPrec(refPrec).Sub(bigf(got), ref)
	dv, _ := d.Float64()
	return math.Abs(dv) / ulp
}

// TestLogUnitAccuracy: logUnit is within 1 ulp of ln u (a 256-bit
// reference) over the radius uniform's whole range [2^-128, 1], on random
// values of every exponent, on the uniforms of random words, and at the
// reduction's edges; and within 1 ulp of math.Log.
func TestLogUnitAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var us []float64
	for e := -128; e <= 0; e++ {
		for range 24 {
			us = append(us, math.Ldexp(1+r.Float64(), e-1))
		}
	}
	for range 800 {
		if m := r.Uint64(); m >= radiusOneWord {
			us = append(us, oneWordUniform(m))
		}
		us = append(us, twoWordUniform(r.Uint64()>>11, r.Uint64()))
	}
	us = append(us, 1, math.Nextafter(1, 0), sqrtHalf, math.Nextafter(sqrtHalf, 0), math.Nextafter(sqrtHalf, 1),
		0.5, math.Nextafter(0.5, 0), 0x1p-11, 0x1p-128, oneWordUniform(math.MaxUint64), oneWordUniform(radiusOneWord),
		twoWordUniform(0, 1), twoWordUniform(radiusOneWord-1, math.MaxUint64))
	worst, worstStd := 0.0, 0.0
	for _, u := range us {
		got := logUnit(u)
		if u == 1 {
			if got != 0 {
				t.Errorf("logUnit(1) = %v, want 0", got)
			}
			continue
		}
		e := ulpErr(got, logRef(u))
		if e > worst {
			worst = e
		}
		if e >= 1 {
			t.Errorf("logUnit(%v) = %v: %.3f ulp from ln", u, got, e)
		}
		if d := math.Abs(got - math.Log(u)); d > 0 {
			_, ex := math.Frexp(got)
			worstStd = max(worstStd, d/math.Ldexp(1, ex-53))
		}
	}
	if worstStd > 1 {
		t.Errorf("logUnit differs from math.Log by %.3f ulp", worstStd)
	}
	t.Logf("%d values: worst %.3f ulp from ln, %.3f ulp from math.Log", len(us), worst, worstStd)
}

// TestSinCosTurnAccuracy: sin and cos of 2π·t are within 1 ulp (of each
// result) of a 256-bit reference, for
// random angle words and at every octant's edges, where the reduction has
// to be exact: the values near the zeros of sin and cos keep their
// relative accuracy, and the exact zeros (t = 1/4, 1/2, 3/4) are zeros.
func TestSinCosTurnAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var as []uint64
	for range 10000 {
		as = append(as, r.Uint64())
	}
	for k := uint64(0); k < 8; k++ {
		for _, d := range []int64{0, 1, -1, 2, 7, -7, 1 << 20, -(1 << 20)} {
			v := int64(k<<61>>11) + d
			if v >= 0 && v < 1<<53 {
				as = append(as, uint64(v)<<11)
			}
		}
	}
	as = append(as, math.MaxUint64)
	worst := 0.0
	for _, a := range as {
		tt := float64(a>>11) * 0x1p-53
		s, c := sinCosTurn(a)
		rs, rc := sinCosRef(tt)
		es, ec := ulpErr(s, rs), ulpErr(c, rc)
		worst = max(worst, es, ec)
		if es >= 1 || ec >= 1 {
			t.Errorf("t = %v: sin %v (%.3f ulp), cos %v (%.3f ulp)", tt, s, es, c, ec)
		}
	}
	t.Logf("%d angles: worst %.3f ulp", len(as), worst)
}

// edgeWords returns random words for np pairs with the edge cases of both
// kinds placed among them: radius words at and just below 2^53 (flagged),
// 0, and the largest (u = 1, radius 0); angle words at octant edges.
func edgeWords(r *rand.Rand, np int) []uint64 {
	w := make([]uint64, 2*np)
	for i := range w {
		w[i] = r.Uint64()
	}
	radius := []uint64{radiusOneWord, radiusOneWord - 1, 0, math.MaxUint64, 1 << 63, radiusOneWord + 1}
	angle := []uint64{0, math.MaxUint64, 1 << 61, 1 << 62, 3 << 61, 1 << 63, 5 << 61, 3 << 62, 7 << 61}
	for i, v := range radius {
		if i < np {
			w[(i*7)%np] = v
		}
	}
	for i, v := range angle {
		if i < np {
			w[np+(i*5+1)%np] = v
		}
	}
	return w
}

// edgeValues returns n values to release: zeros of both signs, ordinary
// values, tiny and huge ones, and (withNonFinite) Inf and NaN.
func edgeValues[T float32 | float64](r *rand.Rand, n int, withNonFinite bool) []T {
	special := []float64{0, math.Copysign(0, -1), 1, -3.25, 1e-30, -1e30, 0x1p22, 5e-324}
	if withNonFinite {
		special = append(special, math.Inf(1), math.Inf(-1), math.NaN())
	}
	d := make([]T, n)
	for i := range d {
		if i%5 == 0 {
			d[i] = T(special[(i/5)%len(special)])
		} else {
			d[i] = T(r.NormFloat64() * 4)
		}
	}
	return d
}

func sameBits[T float32 | float64](a, b T) bool {
	if a != a && b != b {
		return true // both NaN
	}
	return math.Float64bits(float64(a)) == math.Float64bits(float64(b)) && (a != 0 || math.Signbit(float64(a)) == math.Signbit(float64(b)))
}

func checkCMatchesGo[T float32 | float64](t *testing.T, name string, r *rand.Rand) {
	for _, np := range []int{8, 13, 64, 301, gaussBlock} {
		for k, std := range []float64{1, 2.5, 1e-3, 4096, 1} {
			words := edgeWords(r, np)
			src := edgeValues[T](r, 2*np, true)
			g := NewSecureNoise().Grid(std)
			if k == 4 {
				// The variates themselves: on zeros with a grid of 2^-80,
				// finer than any z's float64 spacing, the float64 release
				// is z bit for bit (the usual grid would hide differences
				// below 2^-30).
				src = make([]T, 2*np)
				g = 0x1p-80
			}
			goOut, cOut := slices.Clone(src), slices.Clone(src)
			nGo := gaussPairsGo(goOut, words, 0, std, g, 1/g)
			count := np &^ 7
			nC := gaussPairsC(cOut, words, count, std, g, 1/g) + gaussPairsGo(cOut, words, count, std, g, 1/g)
			if nC != nGo {
				t.Errorf("%s np=%d std=%g: C flagged %d pairs, Go %d", name, np, std, nC, nGo)
			}
			want := 0
			for _, m := range words[:np] {
				if m < radiusOneWord {
					want++
				}
			}
			if nGo != want {
				t.Errorf("%s np=%d: flagged %d pairs, %d radius words are below 2^53", name, np, nGo, want)
			}
			for i := range goOut {
				if !sameBits(goOut[i], cOut[i]) {
					t.Fatalf("%s np=%d std=%g element %d (x = %v, words %#x, %#x): C %v, Go %v", name, np, std, i, src[i],
						words[i%np], words[np+i%np], cOut[i], goOut[i])
				}
				if words[i%np] < radiusOneWord && !sameBits(goOut[i], src[i]) {
					t.Fatalf("%s: element %d of a flagged pair changed", name, i)
				}
			}
		}
	}
}

// TestGaussPairsCMatchesGo: the AVX-512 loop gives the Go twin's bits (and
// flags the same pairs) on random and edge words and values, float32 and
// float64, with block sizes that leave a Go tail, and (float64, grid 2^-80)
// the same variates to the last bit.
func TestGaussPairsCMatchesGo(t *testing.T) {
	if !gaussC {
		t.Skip("no C sampler on this CPU or build (needs cgo, amd64, AVX-512F and DQ)")
	}
	r := rand.New(rand.NewPCG(5, 6))
	checkCMatchesGo[float32](t, "float32", r)
	checkCMatchesGo[float64](t, "float64", r)
}

// scripted is a wordSource that returns its words in order.
type scripted struct{ w []uint64 }

func (s *scripted) Uint64() uint64 {
	v := s.w[0]
	s.w = s.w[1:]
	return v
}

func TestRadiusUniform(t *testing.T) {
	for _, tc := range []struct {
		words []uint64
		want  float64
	}{
		{[]uint64{radiusOneWord}, 0x1p-11},
		{[]uint64{math.MaxUint64}, 1},
		{[]uint64{5, 7}, (5 + 7*0x1p-64) * 0x1p-64},
		{[]uint64{0, 3}, 3 * 0x1p-128},
		{[]uint64{0, 0, 0, 0, radiusOneWord + 2048}, float64(radiusOneWord+2048) * 0x1p-64},
	} {
		src := &scripted{tc.words}
		if got := radiusUniform(src); got != tc.want || len(src.w) != 0 {
			t.Errorf("words %#x: u = %v with %d words left, want %v and none", tc.words, got, len(src.w), tc.want)
		}
	}
	// From a real generator: always in (0, 1], and spread over it.
	var cha rand.ChaCha8
	lo, hi := 1.0, 0.0
	for range 1 << 16 {
		u := radiusUniform(&cha)
		if !(u > 0 && u <= 1) {
			t.Fatalf("radiusUniform = %v outside (0, 1]", u)
		}
		lo, hi = min(lo, u), max(hi, u)
	}
	// 65536 draws: the extremes are within 1e-3 of the ends with
	// probability 1 − 2·(1 − 1e-3)^65536 ≈ 1 − 1e-28.
	if lo > 1e-3 || hi < 1-1e-3 {
		t.Errorf("radiusUniform range [%v, %v] too narrow", lo, hi)
	}
}

// TestFixFlagged: a flagged pair takes its second radius word from the
// source (and starts over when both words are 0), keeps its angle word, and
// is released as gaussPair of that uniform; other pairs are left alone.
func TestFixFlagged(t *testing.T) {
	const std, g = 2.0, 0x1p-29
	words := []uint64{5, 1 << 60, 0, // radius words: flagged, not, flagged
		1 << 62, 12345 << 20, 3 << 61} // angle words
	d := []float64{1, 2, 3, 4, 5, 6}
	src := &scripted{[]uint64{7, 0, 9, radiusOneWord + 1}}
	got := slices.Clone(d)
	fixFlagged(got, words, src, std, g, 1/g)
	if len(src.w) != 0 {
		t.Errorf("%d scripted words left, want 0", len(src.w))
	}
	want := slices.Clone(d)
	z0, z1 := gaussPair(twoWordUniform(5, 7), 1<<62)
	want[0], want[3] = releaseOne(1, z0, std, g, 1/g), releaseOne(4, z1, std, g, 1/g)
	// Pair 2: radius words 0 and 0 (u = 0, rejected); the restart draws 9
	// (below 2^53) and radiusOneWord+1 as its second word.
	z0, z1 = gaussPair(twoWordUniform(9, radiusOneWord+1), 3<<61)
	want[2], want[5] = releaseOne(3, z0, std, g, 1/g), releaseOne(6, z1, std, g, 1/g)
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("element %d: %v, want %v", i, got[i], want[i])
		}
	}
	if got[1] != 2 || got[4] != 5 {
		t.Errorf("unflagged pair changed: %v, %v", got[1], got[4])
	}
}

// TestSecurePairsRayleigh checks the pairs themselves: with x = 0 and
// std = 1 the two elements of pair i of a block (i and np+i, blocks of
// gaussBlock pairs from each chunk's start) hold r·cos and r·sin, so
// exp(−(z0² + z1²)/2) is the radius uniform u: it must be uniform on
// (0, 1] (Kolmogorov–Smirnov), and the pairs with u < 2^-11 (the flagged
// ones, released by fixFlagged) must be 2^-11 of all: a sampler that left
// the flagged pairs out fails (0 against about 256). The vector has
// an odd length, so the last element's own pair is drawn too.
func TestSecurePairsRayleigh(t *testing.T) {
	const n = 1<<20 + 1
	d := make([]float32, n)
	NewSecureNoise().AddGaussian(d, 1)
	var us []float64
	for c := 0; c < n; c += noiseChunk {
		chunk := d[c:min(c+noiseChunk, n)]
		for len(chunk) >= 2 {
			np := min(gaussBlock, len(chunk)/2)
			for i := range np {
				z0, z1 := float64(chunk[i]), float64(chunk[np+i])
				us = append(us, math.Exp(-(z0*z0+z1*z1)/2))
			}
			chunk = chunk[2*np:]
		}
	}
	if last := d[n-1]; last == 0 || math.IsNaN(float64(last)) {
		t.Errorf("last element %v", last)
	}
	slices.Sort(us)
	m := float64(len(us))
	dmax := 0.0
	for i, u := range us {
		dmax = max(dmax, float64(i+1)/m-u, u-float64(i)/m)
	}
	if k := dmax * math.Sqrt(m); k > ksCrit {
		t.Errorf("radius uniforms: Kolmogorov–Smirnov √N·D = %.3f > %.3f", k, ksCrit)
	}
	// The float32 outputs carry 24 bits, so u is known to about 1e-6
	// relative: the count below 2^-11 is exact but for pairs within that of
	// the edge (expected count ≪ 1).
	tail := 0
	for _, u := range us {
		if u < 0x1p-11 {
			tail++
		}
	}
	p := 0x1p-11
	if z := (float64(tail) - m*p) / math.Sqrt(m*p*(1-p)); math.Abs(z) > zCrit {
		t.Errorf("%d pairs with u < 2^-11, want about %.0f (z = %.2f)", tail, m*p, z)
	}
}
