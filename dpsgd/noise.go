package dpsgd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"dptrain/internal/par"
	"dptrain/internal/seed"
)

// NoiseSource adds independent Gaussian noise to vectors. A source is not
// safe for concurrent use; one call may itself run on several goroutines.
type NoiseSource interface {
	// AddGaussian adds i.i.d. 𝒩(0, std²) to every element of dst. std must
	// be finite and ≥ 0 (std = 0 leaves dst unchanged); otherwise it panics
	// with a *UsageError.
	AddGaussian(dst []float32, std float64)
	// AddGaussian64 is AddGaussian for values released in float64: it sets
	// every dst[i] to a sample of dst[i] + 𝒩(0, std²) computed and returned
	// in float64, with no float32 rounding inside (SecureNoise releases
	// g·round((x + std·Z)/g) for x = dst[i]; see SecureNoise). Noise the
	// value being released itself: x + (noise drawn on a zero buffer) is
	// the naive floating-point mechanism again, whose low bits are x's. A
	// call counts as one call of the stream, like AddGaussian. std is
	// checked as for AddGaussian.
	AddGaussian64(dst []float64, std float64)
	// Mode names the source for the run record: ModeSeeded or ModeSecure.
	Mode() NoiseMode
	// MarshalBinary saves the position in the noise stream, so that a
	// source restored with UnmarshalBinary draws exactly the noise an
	// uninterrupted one would have drawn (seeded mode).
	MarshalBinary() ([]byte, error)
	// UnmarshalBinary restores a state written by MarshalBinary of a
	// source of the same mode.
	UnmarshalBinary(data []byte) error
}

// NoiseMode names where a source's randomness comes from. Its values are
// the config's noise names and what a run records (summary.json's and the
// checkpoint's noise_mode).
type NoiseMode string

// The noise modes.
const (
	// ModeSeeded is SeededNoise: reproducible from the run's seed, for
	// experiments (ε holds only while the seed stays secret).
	ModeSeeded NoiseMode = "seeded"
	// ModeSecure is SecureNoise: keyed from crypto/rand and hardened
	// against floating-point attacks, for releases.
	ModeSecure NoiseMode = "secure"
)

// NoiseModes lists the noise modes, in the order error messages give them.
func NoiseModes() []string { return []string{string(ModeSeeded), string(ModeSecure)} }

// ParseNoiseMode returns the mode named s, or an error listing the modes.
func ParseNoiseMode(s string) (NoiseMode, error) {
	if slices.Contains(NoiseModes(), s) {
		return NoiseMode(s), nil
	}
	return "", fmt.Errorf("want one of %s; got %q", strings.Join(NoiseModes(), ", "), s)
}

// NewNoise returns the source for a mode: ModeSeeded (seed used) or
// ModeSecure (seed ignored). Any other mode is an error naming the field.
func NewNoise(mode NoiseMode, seed uint64) (NoiseSource, error) {
	m, err := ParseNoiseMode(string(mode))
	if err != nil {
		return nil, fmt.Errorf("dpsgd: noise mode: %w", err)
	}
	switch m {
	case ModeSeeded:
		return NewSeededNoise(seed), nil
	case ModeSecure:
		return NewSecureNoise(), nil
	}
	panic("dpsgd: NewNoise: mode " + string(m) + " parsed but not handled")
}

// RestoreNoise rebuilds a source from a state written by MarshalBinary of
// either mode (as stored in a checkpoint).
func RestoreNoise(state []byte) (NoiseSource, error) {
	var s NoiseSource
	switch {
	case len(state) >= len(seededMagic) && string(state[:len(seededMagic)]) == seededMagic:
		s = NewSeededNoise(0)
	case len(state) >= len(secureMagic) && string(state[:len(secureMagic)]) == secureMagic:
		s = NewSecureNoise()
	default:
		return nil, errors.New("dpsgd: noise state: unrecognised header (not written by a dpsgd noise source)")
	}
	if err := s.UnmarshalBinary(state); err != nil {
		return nil, err
	}
	return s, nil
}

// noiseChunk is the number of elements drawn from one derived stream. It is
// part of the seeded stream's definition: changing it changes the noise.
const noiseChunk = 1 << 16

// SeededNoise is the reproducible source (mode "seeded"). Call k (counting
// from 0) of AddGaussian or AddGaussian64 fills chunk j (elements
// [j·65536, (j+1)·65536)) of its dst from a PCG generator seeded by a hash
// of (seed, k, j), so the noise depends only on the seed and the sequence of
// calls, never on the number of goroutines, and the state is the pair
// (seed, k). The normal variates Z come from math/rand/v2's NormFloat64 (a
// ziggurat), so a stream is reproducible for a given Go release. Element i
// becomes fl(x_i + std·Z_i) in float64, then float32 for AddGaussian; both
// methods draw the same Z for the same call k, so float32 of AddGaussian64's
// output for float64(x) is AddGaussian's output for x.
//
// Seeded noise is for experiments and reproducibility: anyone who knows the
// seed can subtract the noise, so a model trained with it has no privacy
// guarantee against someone who knows the seed. Nor is it hardened against
// floating-point attacks (the naive sum's low bits depend on x; see
// SecureNoise). Use SecureNoise for a release.
type SeededNoise struct {
	seed  uint64
	calls uint64
	job   seededJob
	local par.Worker
}

type seededJob struct {
	dst   []float32
	dst64 []float64 // set instead of dst by AddGaussian64
	std   float64
	k0    uint64 // hash of (seed, call)
	ndst  int
}

// NewSeededNoise returns a reproducible source for seed.
func NewSeededNoise(seed uint64) *SeededNoise {
	return &SeededNoise{seed: seed}
}

// Mode returns ModeSeeded.
func (s *SeededNoise) Mode() NoiseMode { return ModeSeeded }

// Calls returns how many AddGaussian and AddGaussian64 calls the source
// has served.
func (s *SeededNoise) Calls() uint64 { return s.calls }

// AddGaussian adds 𝒩(0, std²) to every element of dst.
func (s *SeededNoise) AddGaussian(dst []float32, std float64) {
	s.add("SeededNoise.AddGaussian", dst, nil, std)
}

// add serves one call on dst or dst64 (the other is nil).
func (s *SeededNoise) add(op string, dst []float32, dst64 []float64, std float64) {
	checkStd(op, std)
	call := s.calls
	s.calls++
	n := len(dst) + len(dst64)
	if std == 0 || n == 0 {
		return
	}
	s.job = seededJob{dst: dst, dst64: dst64, std: std, k0: seed.Child(s.seed, call, seed.Golden), ndst: n}
	chunks := (n + noiseChunk - 1) / noiseChunk
	par.Run(chunks, 1, &s.job, &s.local)
	s.job.dst, s.job.dst64 = nil, nil
}

// The keying of the seeded stream. Call k's key is k0 = seed.Child(seed,
// k, seed.Golden); chunk c of that call is drawn by rand.NewPCG(a, b) with
// a = seed.Child(k0, c, chunkSalt) and b = seed.Mix64(a ^ pcgWordSalt).
// The salts keep the derivations apart: Mix64 is given call+Golden and
// c+chunkSalt, which differ for every call and chunk below 2^61, and
// a^pcgWordSalt. Any such constants would do; these are part of the
// stream's definition (changing one changes every seeded run's noise).
const (
	// chunkSalt is an arbitrary odd constant (it has no derivation that
	// matters; it is the one seeded runs were made with).
	chunkSalt = 0x632be59bd9b4e019
	// pcgWordSalt is ⌊2^64/φ₃⌋, φ₃ ≈ 1.2207 the real root of x⁴ = x + 1
	// (Roberts' generalised golden ratio for three dimensions), odd.
	pcgWordSalt = 0xd1b54a32d192ed03
)

// Run fills chunks [lo, hi). Chunk c's generator is keyed by (call, c)
// alone, never by the part of [0, chunks) a goroutine was given.
func (j *seededJob) Run(lo, hi int, pw *par.Worker) {
	w := scratch(pw)
	for c := lo; c < hi; c++ {
		a := seed.Child(j.k0, uint64(c), chunkSalt)
		b := seed.Mix64(a ^ pcgWordSalt)
		w.pcg.Seed(a, b)
		r := w.pcgRand()
		first, end := c*noiseChunk, min((c+1)*noiseChunk, j.ndst)
		if j.dst64 != nil {
			addNormal(j.dst64[first:end], j.std, r)
		} else {
			addNormal(j.dst[first:end], j.std, r)
		}
	}
}

// addNormal sets d[i] to fl(d[i] + std·Z_i), Z_i from r, in float64 and
// then in d's precision.
func addNormal[T float32 | float64](d []T, std float64, r *rand.Rand) {
	for i := range d {
		d[i] = T(float64(d[i]) + std*r.NormFloat64())
	}
}

const seededMagic = "dpsgd.noise.seeded.v1\x00"

// MarshalBinary writes the seed and the number of calls served.
func (s *SeededNoise) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, len(seededMagic)+16)
	b = append(b, seededMagic...)
	b = binary.LittleEndian.AppendUint64(b, s.seed)
	b = binary.LittleEndian.AppendUint64(b, s.calls)
	return b, nil
}

// UnmarshalBinary restores a seeded state; the next call continues the
// stream exactly where the saved source stopped.
func (s *SeededNoise) UnmarshalBinary(data []byte) error {
	if len(data) >= len(secureMagic) && string(data[:len(secureMagic)]) == secureMagic {
		return errors.New("dpsgd: noise state: saved by a secure source, cannot restore into a seeded one (the run's noise mode changed)")
	}
	if len(data) != len(seededMagic)+16 || string(data[:len(seededMagic)]) != seededMagic {
		return fmt.Errorf("dpsgd: noise state: want %d bytes starting %q, got %d bytes", len(seededMagic)+16, seededMagic[:len(seededMagic)-1], len(data))
	}
	s.seed = binary.LittleEndian.Uint64(data[len(seededMagic):])
	s.calls = binary.LittleEndian.Uint64(data[len(seededMagic)+8:])
	return nil
}

func checkStd(op string, std float64) {
	if !(std >= 0) || math.IsInf(std, 1) {
		panic(&UsageError{Op: op, Msg: fmt.Sprintf("std must be finite and >= 0, got %v", std)})
	}
}

// UsageError is the panic value for misuse of the package's API (lengths
// that do not match, invalid arguments a caller should have validated).
type UsageError struct {
	Op, Msg string
}

func (e *UsageError) Error() string { return "dpsgd: " + e.Op + ": " + e.Msg }

func usagef(op, format string, args ...any) {
	panic(&UsageError{Op: op, Msg: fmt.Sprintf(format, args...)})
}

// worker is the package's per-goroutine scratch in the parallel runtime's
// workers (par.Worker): generators that are reseeded per chunk in place, so
// that the hot path allocates nothing.
type worker struct {
	pcg rand.PCG
	rnd *rand.Rand
	cha rand.ChaCha8
	// words holds one block of the secure sampler's words (secureFill).
	words []uint64
}

var workerSlot = par.NewSlotKey()

// scratch returns w's dpsgd scratch.
func scratch(w *par.Worker) *worker {
	return w.Slot(workerSlot, func() any { return new(worker) }).(*worker)
}

func (w *worker) pcgRand() *rand.Rand {
	if w.rnd == nil {
		w.rnd = rand.New(&w.pcg)
	}
	return w.rnd
}
