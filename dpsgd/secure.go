package dpsgd

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"dptrain/internal/par"
)

// secureGridBits sets the output grid of SecureNoise: for std in
// [2^(e-1), 2^e) every output is a multiple of g = 2^(e-1-secureGridBits).
const secureGridBits = 30

// SecureNoise is the source for private releases (mode "secure").
//
// Randomness: every chunk of 65,536 elements of every call is drawn from a
// ChaCha8 generator (math/rand/v2's, a cryptographically strong generator)
// keyed with 32 fresh bytes from crypto/rand, so no state is kept between
// calls and nothing about the noise can be predicted or replayed.
//
// Sampling, hardened against floating-point attacks: Mironov (2012) showed
// that a naive floating-point sample x + n leaks x through the low-order
// bits, because the set of floating-point values the sum can take depends on
// x (the same holds for Gaussian samplers, Holohan & Braghin 2021). Instead
// of releasing fl(x + n), SecureNoise releases
//
//	y = g · round((x + std·Z) / g),   g = 2^(⌊log2 std⌋ − 30),
//
// computed in float64 (ties to even), then stored as float32 by AddGaussian
// and returned as float64 by AddGaussian64. Rounding to the grid g is
// post-processing of the Gaussian mechanism x + std·Z, so it costs no
// privacy; every output is a multiple of g whatever x is, so the set of
// possible outputs no longer depends on the low bits of x; and the grid is
// about 2^30 times finer than std, so the rounding changes nothing useful
// (float32 itself keeps only 24 bits). Anything computed from y afterwards
// (AddGaussian's float32 rounding, a caller's y/N stored as float32) is
// post-processing too. The hardening holds only for the value the noise is
// applied to: noise drawn on a zero buffer and added to x by the caller
// gives fl(x + y), the naive mechanism again (y lies on a grid, g or the
// float32 one, that is coarser than x's low bits, so the sum keeps them
// and (x + y) mod g = x mod g). Release AddGaussian64 of x for a float64
// x, never x + AddGaussian64 of 0 (review finding F2: the data-norm sums).
//
// What remains is how closely the sampler gives each grid cell of width g
// (2^-30 std) its Gaussian probability. Z comes from the Box–Muller
// transform on uniforms with full relative precision (the radius uniform
// takes a second 64-bit word when its first is below 2^53, u < 2^-11, so
// the tails are resolved too) and a 53-bit angle: each grid cell holds on
// the order of 2^15 or more distinct sampler outputs, in contrast to the
// few a naive sampler offers at float32 scale. The logarithm and the sine
// and cosine of the angle (a fraction of a turn, reduced to [−π/4, π/4]
// exactly) are the sampler's own (gauss.go: fdlibm's polynomials), within
// 1 ulp of 256-bit references (TestLogUnitAccuracy, TestSinCosTurnAccuracy),
// so z is off by a few units of 2^-53·|z|, of order 2^-22·|z| of a grid
// cell. Words are drawn in blocks of 1,024 pairs (radius words, then angle
// words; a pair's elements are i and 1,024 + i of its block) and a block is
// released by one branch-free loop, in C with AVX-512 where the CPU has it
// (the same bits as the Go loop: TestGaussPairsCMatchesGo), its few pairs
// with a small radius word afterwards (TestFixFlagged,
// TestSecurePairsRayleigh).
//
// Limitations (documented, not hidden): the bound on the per-cell error is
// an engineering argument from the sampler's resolution and the accuracy of
// its logarithm, square root and sine/cosine (within 1 ulp), not an exact
// sampler with a proof as the discrete Gaussian of Canonne, Kamath &
// Steinke (2020) would be, and the float64 sum x + std·Z is itself rounded before the snap. That is
// harmless while |x| ≤ 2^22·std: the sum is then below 2^53·g (but for
// the noise), so its float64 spacing is at most g, the rounded sum lies on
// a grid that g is a multiple of, and the snap gives the cell of the exact sum except within one
// spacing of a cell's edge (double rounding). For larger |x| the spacing
// exceeds g and y is the plain float64 sum: still a multiple of g, with
// std·Z on a grid far finer than that spacing, but the argument above
// holds only approximately. The bound is on the input of both methods;
// for a sum of N terms each clipped to C and released with std = σ·C, as
// the data-normalisation sums are, |x| ≤ N·C and it holds while
// N ≤ 2^22·σ. The code is not constant-time (a timing channel would
// have to observe the generator, which is keyed freshly per chunk). Secure
// noise is not reproducible: its saved state only records the mode, and a
// resumed run draws fresh noise. With the C loop it costs about what
// SeededNoise does; in Go alone about three times as much.
type SecureNoise struct {
	calls uint64
	keys  []byte
	job   secureJob
	local par.Worker
}

type secureJob struct {
	dst     []float32
	dst64   []float64 // set instead of dst by AddGaussian64
	n       int       // len(dst) + len(dst64)
	std     float64
	g, invG float64
	keys    []byte
}

// NewSecureNoise returns a crypto-secure, hardened source.
func NewSecureNoise() *SecureNoise { return &SecureNoise{} }

// Mode returns ModeSecure.
func (s *SecureNoise) Mode() NoiseMode { return ModeSecure }

// Grid returns the spacing g of the outputs for a given std (see SecureNoise).
func (s *SecureNoise) Grid(std float64) float64 {
	checkStd("SecureNoise.Grid", std)
	_, e := math.Frexp(std)
	return math.Ldexp(1, e-1-secureGridBits)
}

// AddGaussian sets dst[i] to g·round((dst[i] + std·Z_i)/g) with Z_i i.i.d.
// standard normal, stored as float32 (see SecureNoise).
func (s *SecureNoise) AddGaussian(dst []float32, std float64) {
	s.add("SecureNoise.AddGaussian", dst, nil, std)
}

// add serves one call on dst or dst64 (the other is nil).
func (s *SecureNoise) add(op string, dst []float32, dst64 []float64, std float64) {
	checkStd(op, std)
	s.calls++
	n := len(dst) + len(dst64)
	if std == 0 || n == 0 {
		return
	}
	g := s.Grid(std)
	if g < 0x1p-1000 {
		usagef(op, "std %g too small for the output grid", std)
	}
	chunks := (n + noiseChunk - 1) / noiseChunk
	if cap(s.keys) < 32*chunks {
		s.keys = make([]byte, 32*chunks)
	}
	keys := s.keys[:32*chunks]
	if _, err := crand.Read(keys); err != nil {
		// crypto/rand.Read does not fail on supported systems since Go 1.24.
		panic(fmt.Sprintf("dpsgd: crypto/rand failed: %v", err))
	}
	s.job = secureJob{dst: dst, dst64: dst64, n: n, std: std, g: g, invG: 1 / g, keys: keys}
	par.Run(chunks, 1, &s.job, &s.local)
	clear(keys)
	s.job.dst, s.job.dst64 = nil, nil
}

// Run fills chunks [lo, hi), chunk c from ChaCha8 keyed by its own 256
// fresh bits.
func (j *secureJob) Run(lo, hi int, pw *par.Worker) {
	w := scratch(pw)
	var key [32]byte
	for c := lo; c < hi; c++ {
		copy(key[:], j.keys[32*c:])
		w.cha.Seed(key)
		first, end := c*noiseChunk, min((c+1)*noiseChunk, j.n)
		if j.dst64 != nil {
			secureFill(j, w, j.dst64[first:end])
		} else {
			secureFill(j, w, j.dst[first:end])
		}
	}
	clear(key[:])
}

// secureFill releases every element of one chunk, in blocks of up to
// gaussBlock pairs: 2·np words drawn from w.cha (np radius words, then np
// angle words), the block released by gaussPairs (the C loop where there
// is one) and its few flagged pairs by fixFlagged, which draws their second
// radius words next. An odd last element takes a pair of its own.
func secureFill[T float32 | float64](j *secureJob, w *worker, d []T) {
	if w.words == nil {
		w.words = make([]uint64, 2*gaussBlock)
	}
	for len(d) >= 2 {
		np := min(gaussBlock, len(d)/2)
		words := w.words[:2*np]
		for i := range words {
			words[i] = w.cha.Uint64()
		}
		blk := d[:2*np]
		if gaussPairs(blk, words, j.std, j.g, j.invG) > 0 {
			fixFlagged(blk, words, &w.cha, j.std, j.g, j.invG)
		}
		d = d[2*np:]
	}
	if len(d) == 1 {
		z0, _ := gaussPair(radiusUniform(&w.cha), w.cha.Uint64())
		d[0] = T(releaseOne(float64(d[0]), z0, j.std, j.g, j.invG))
	}
	clear(w.words)
}

const secureMagic = "dpsgd.noise.secure.v1\x00"

// MarshalBinary records the mode and the number of calls served; there is
// no stream to save (see SecureNoise).
func (s *SecureNoise) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, len(secureMagic)+8)
	b = append(b, secureMagic...)
	return binary.LittleEndian.AppendUint64(b, s.calls), nil
}

// UnmarshalBinary accepts a state saved by a secure source (restoring only
// the call count: the noise after a resume is fresh, not a replay) and
// rejects one saved by a seeded source.
func (s *SecureNoise) UnmarshalBinary(data []byte) error {
	if len(data) >= len(seededMagic) && string(data[:len(seededMagic)]) == seededMagic {
		return errors.New("dpsgd: noise state: saved by a seeded source, cannot restore into a secure one (the run's noise mode changed)")
	}
	if len(data) != len(secureMagic)+8 || string(data[:len(secureMagic)]) != secureMagic {
		return fmt.Errorf("dpsgd: noise state: want %d bytes starting %q, got %d bytes", len(secureMagic)+8, secureMagic[:len(secureMagic)-1], len(data))
	}
	s.calls = binary.LittleEndian.Uint64(data[len(secureMagic):])
	return nil
}
