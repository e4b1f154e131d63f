package dpsgd

import (
	"math"
	"testing"
)

// The private data-normalisation release (train/datanorm.go) publishes
// μ = float32(M̃/N) for a float64 sum M of N clipped terms. These tests are
// the privacy review's appendix A1 (finding F2) with an assertion: they
// replay the release arithmetic as a function of (M, noise value t = σZ)
// over consecutive points of a fine lattice of noise values, each carrying
// the same probability mass (the Gaussian density is flat to 1e-4 over the
// window, which is 2^-9 wide against σ = 24), and compare the released
// float32 multisets of a sum M₀ and of its neighbour M₁ = M₀ + d.

// a1 holds the parameters of the review's A1: N = 50,000 examples and
// σ_n·C_μ = 24 as in configs/cifar10-eps3.yaml.
const (
	a1N   = 50_000
	a1Std = 24.0
	// a1S is the float32 spacing of a noise value in [16, 32), the grid the
	// old release's noise lay on.
	a1S = 0x1p-19
)

// snap returns g·round(v/g), ties to even: the snapping every secure
// release applies (releaseOne with z = 0).
func (j *secureJob) snap(v float64) float64 { return releaseOne(v, 0, j.std, j.g, j.invG) }

// a1Release is the release arithmetic as a function of the sum M and the
// noise value t.
type a1Release func(j *secureJob, M, t float64) float32

// a1Snapped is the release that train/datanorm.go makes: the secure
// sampler snaps the released value, M̃ = g·round((M + t)/g)
// (SecureNoise.AddGaussian64, with its own snap), and μ = M̃/N is then
// stored as float32.
func a1Snapped(j *secureJob, M, t float64) float32 {
	return float32(j.snap(M+t) / a1N)
}

// a1ZeroBuffer is the release before the fix: noise drawn on a zero float32
// buffer (SecureNoise.AddGaussian: float32(g·round((0 + t)/g))) and then
// added to M in float64, where the sum is exact.
func a1ZeroBuffer(j *secureJob, M, t float64) float32 {
	n := float32(j.snap(0 + t))
	return float32((M + float64(n)) / a1N)
}

// a1Distinguish returns, for the release rel of M₀ and of M₁ = M₀ + d,
//
//   - leak: P₀(output impossible under M₁), the mass of the outputs of M₀
//     that M₁ never produces, and
//   - maxLog: max |log P₀(o)/P₁(o)| over outputs o of both, leaving out the
//     lowest and the highest output of M₀ (whose bins the window cuts).
//
// M₀ takes the noise values t₀ + k·h, k ∈ [0, K), with h = g/4 (a lattice
// finer than the output grid g, as the sampler's float64 values std·Z are);
// M₁ takes the same lattice over a window wider by a margin on each side,
// so that its outputs cover those of M₀ with no edge effect: a correct
// release then gives exactly P₀ = P₁ on every shared, uncut output.
func a1Distinguish(rel a1Release, M0, d float64) (leak, maxLog float64) {
	s := NewSecureNoise()
	g := s.Grid(a1Std)
	j := &secureJob{std: a1Std, g: g, invG: 1 / g}
	h := g / 4
	const K = 1 << 19                 // 1024 float32 noise values of spacing a1S
	t0 := 20 + 0.375*h                // off the ties of the g-grid
	margin := math.Ceil(64 * a1S / h) // 64 float32 noise values
	lo1 := math.Floor(-d/h) - margin  // M₁'s window, in lattice steps
	hi1 := math.Ceil((K*h-d)/h) + margin
	c0 := make(map[float32]int)
	c1 := make(map[float32]int)
	first, last := float32(math.Inf(1)), float32(math.Inf(-1))
	for k := range K {
		o := rel(j, M0, t0+float64(k)*h)
		c0[o]++
		first, last = min(first, o), max(last, o)
	}
	M1 := M0 + d
	for k := lo1; k < hi1; k++ {
		c1[rel(j, M1, t0+k*h)]++
	}
	impossible := 0
	for o, n0 := range c0 {
		n1 := c1[o]
		if n1 == 0 {
			impossible += n0
			continue
		}
		if o != first && o != last {
			// Equal mass per lattice point: the counts are the
			// probabilities up to one common factor.
			maxLog = max(maxLog, math.Abs(math.Log(float64(n0)/float64(n1))))
		}
	}
	return float64(impossible) / K, maxLog
}

// a1Neighbour is the review's neighbour offset: d ≈ 0.9876 (well inside
// a clip bound C_μ), d ≡ s/2 mod s, so M₀ + n and M₁ + n fall on
// interleaved halves of the float32 noise grid.
func a1Neighbour() float64 {
	return 0.9876 - math.Mod(0.9876, a1S) + 0.5*a1S
}

// TestDataNormReleaseA1 is A1 as a test: the snapped release of the value
// itself gives a neighbour the same output distribution up to the window
// edges (P₀(impossible under M₁) < 1e-3 and no log-ratio above 0.01 on
// shared outputs), for sums near 0 (the review's |M₀| = 1.2 and 50),
// larger ones, one whose noisy value is near 0 (M₀ = −20, where the float32
// μ is finest), and for a neighbour offset with low bits below g too.
func TestDataNormReleaseA1(t *testing.T) {
	g := NewSecureNoise().Grid(a1Std)
	d := a1Neighbour()
	for _, M0 := range []float64{1.2, -1.2, 50, 300, 1400, -20} {
		for _, dd := range []float64{d, d + 0.3*g, -d} {
			leak, maxLog := a1Distinguish(a1Snapped, M0, dd)
			t.Logf("M₀ = %g, d = %.10g: P₀(impossible under M₁) = %.3g, max |log P₀/P₁| = %.3g", M0, dd, leak, maxLog)
			if leak >= 1e-3 {
				t.Errorf("M₀ = %g, d = %.10g: P₀(output impossible under M₁) = %.3g, want < 1e-3", M0, dd, leak)
			}
			if maxLog >= 0.01 {
				t.Errorf("M₀ = %g, d = %.10g: max |log P₀/P₁| = %.3g on shared outputs, want < 0.01", M0, dd, maxLog)
			}
		}
	}
}

// TestDataNormReleaseA1DetectsZeroBuffer runs the same check on the
// release before the fix and requires it to fail there as the review
// measured (0.31 of the mass impossible at |M₀| = 1.2, a log-ratio of 0.29
// at |M₀| = 50), so that TestDataNormReleaseA1 is able to fail.
func TestDataNormReleaseA1DetectsZeroBuffer(t *testing.T) {
	d := a1Neighbour()
	for _, tc := range []struct {
		M0              float64
		minLeak, minLog float64
	}{
		{1.2, 0.2, 0},   // review: 0.31, —
		{50, 0, 0.2},    // review: 0, 0.29
		{300, 0, 0.05},  // review: 0, 0.08
		{1400, 0, 0.01}, // review: 0, 0.02
	} {
		leak, maxLog := a1Distinguish(a1ZeroBuffer, tc.M0, d)
		t.Logf("zero-buffer release, M₀ = %g: P₀(impossible under M₁) = %.3g, max |log P₀/P₁| = %.3g", tc.M0, leak, maxLog)
		if leak < 1e-3 && maxLog < 0.01 {
			t.Errorf("M₀ = %g: the A1 check passes the zero-buffer release (P₀ = %.3g, max log-ratio %.3g): it cannot detect F2", tc.M0, leak, maxLog)
		}
		if leak < tc.minLeak || maxLog < tc.minLog {
			t.Errorf("M₀ = %g: P₀ = %.3g, max log-ratio %.3g; the review measured at least %g and %g", tc.M0, leak, maxLog, tc.minLeak, tc.minLog)
		}
	}
}
