package dpsgd

import (
	"fmt"
	"math"

	"dptrain/internal/fault"
)

// ClipEpsilon is the stabiliser in the clip factor min(1, C/(‖g‖+ε)).
const ClipEpsilon = 1e-6

// ClipFactors writes c_i = min(1, C/(‖g_i‖+1e-6)) into dst for squared norms
// sq (flat clipping, DESIGN §2 step 4), and returns how many examples were
// clipped (c_i < 1). A norm that is not a finite number ≥ 0 (NaN, ±Inf,
// negative: an overflowed or broken gradient) gets c_i = 0: the example
// contributes nothing, which keeps the sensitivity bound. The factor is
// rounded down to float32, so that c_i·‖g_i‖ ≤ C holds after rounding.
func ClipFactors(dst []float32, sq []float64, clipNorm float64) int {
	if len(dst) != len(sq) {
		usagef("ClipFactors", "dst has %d entries for %d norms", len(dst), len(sq))
	}
	clipped := 0
	for i, s := range sq {
		if !(s >= 0) || math.IsInf(s, 0) {
			dst[i] = 0
			clipped++
			continue
		}
		// c is computed from an upper bound of ‖g_i‖: s is a float64 sum
		// over at most 2^13 layers' norms (relative error ≤ 2^-40), the
		// square root and the division each round once (2^-53), so
		// scaling ‖g_i‖ up by (1 + 2^-40)(1 + 2^-52) and c down by
		// (1 − 2^-52) keeps c·‖g_i‖ ≤ C in exact arithmetic.
		nrm := math.Sqrt(s*(1+0x1p-40)) * (1 + 0x1p-52)
		c := clipNorm / (nrm + ClipEpsilon) * (1 - 0x1p-52)
		if c < 1 {
			clipped++
		} else {
			c = 1
		}
		f := float32(c)
		if float64(f) > c {
			f = math.Nextafter32(f, 0)
		}
		if fault.Injected.NoClip {
			f = 1 // a broken mechanism, for the audit's tests only
		}
		dst[i] = f
	}
	return clipped
}

// PerLayerClipNorms splits a total clip norm C over L layers as C_l = C/√L,
// so that the clipped per-example gradient's total norm is at most
// √(Σ C_l²) = C: per-layer clipping has the same sensitivity as flat
// clipping with C.
func PerLayerClipNorms(total float64, layers int) []float64 {
	out := make([]float64, layers)
	for i := range out {
		out[i] = total / math.Sqrt(float64(layers))
	}
	return out
}

// PrivacyConfig is the part of the configuration that changes what DP-SGD
// releases. Every field is checked by Validate.
type PrivacyConfig struct {
	ClipNorm          float64 // C > 0
	NoiseMultiplier   float64 // σ ≥ 0 (0 only when explicitly non-private)
	ExpectedBatchSize float64 // B = q·N > 0: the divisor of the noisy sum
	// SamplingRate q ∈ (0, 1] is the Poisson rate the batches were drawn
	// with; it is part of the event each step reports.
	SamplingRate     float64
	PerLayerClipping bool
	// AugMultiplicity K ≥ 1: rows per example; the example's gradient is the
	// mean over its K augmentations.
	AugMultiplicity int
}

// Validate returns an error naming the first field that is out of range.
func (c PrivacyConfig) Validate() error {
	switch {
	case !(c.ClipNorm > 0) || math.IsInf(c.ClipNorm, 0):
		return fmt.Errorf("clip norm C=%g must be positive and finite", c.ClipNorm)
	case !(c.NoiseMultiplier >= 0) || math.IsInf(c.NoiseMultiplier, 0):
		return fmt.Errorf("noise multiplier σ=%g must be ≥ 0 and finite", c.NoiseMultiplier)
	case !(c.ExpectedBatchSize > 0) || math.IsInf(c.ExpectedBatchSize, 0):
		return fmt.Errorf("expected batch size %g must be positive", c.ExpectedBatchSize)
	case !(c.SamplingRate > 0 && c.SamplingRate <= 1):
		return fmt.Errorf("sampling rate q=%g must be in (0, 1]", c.SamplingRate)
	case c.AugMultiplicity < 1:
		return fmt.Errorf("augmentation multiplicity K=%d must be ≥ 1", c.AugMultiplicity)
	}
	return nil
}
