package dpsgd

import (
	"fmt"
	"math"
	"sort"

	"dptrain/accounting"
	"dptrain/tensor"
)

// Private data normalisation (feature_norm: data), after Tramèr & Boneh
// 2021 (their "DataNorm", here with data-independent clip bounds): the
// features z = front(x) of each training example (the fixed layers below
// the nn.Standardize layer, e.g. the scattering transform) give two
// vectors over channels c,
//
//	m_i[c] = mean_hw z[c],   s_i[c] = mean_hw z[c]²,
//
// clipped to L2 norms C_μ and C_s. Two Gaussian mechanisms release
//
//	M = Σ_i clip(m_i) + 𝒩(0, σ_n²C_μ²),   S = Σ_i clip(s_i) + 𝒩(0, σ_n²C_s²),
//
// each of sensitivity C_μ (resp. C_s) under adding or removing one example,
// so the release is the event SelfComposed(Gaussian(σ_n), 2) in the ledger,
// composed with the DP-SGD steps that follow (σ of the steps is calibrated
// for the whole). The layer then uses μ = M/N and v = max(S/N − μ², 0), with
// N the number of training examples (public, as in q = B/N). Nothing derived
// from M and S is written before the step-0 checkpoint, which stores μ and
// v with the ledger; a resumed run reuses them and never releases again.

// DataNormEvent is the accounting event of the statistics release with
// noise multiplier σ_n (the event ChannelMoments.Release reports).
func DataNormEvent(sigmaN float64) accounting.Event {
	return accounting.SelfComposed{Event: accounting.Gaussian{NoiseMultiplier: sigmaN}, Count: 2}
}

// ChannelMoments accumulates Σ clip(m_i) and Σ clip(s_i).
type ChannelMoments struct {
	sumMean, sumSq     []float64
	clipMean, clipSq   float64 // ≤ 0: no clipping (non-private runs)
	n                  int
	clippedM, clippedS int // examples whose vector was scaled down
	m, s               []float64
	// normsM, normsS keep ‖m_i‖, ‖s_i‖ when collect is set (non-private
	// runs report their quantiles, to help choose C_μ and C_s).
	collect        bool
	normsM, normsS []float64
}

// NewChannelMoments returns an accumulator for c channels with clip
// bounds C_μ = clipMean and C_s = clipSq (≤ 0: no clipping, for
// non-private runs only). With collectNorms it keeps each example's
// unclipped norms for NormQuantiles (never for a private release: they
// are not private).
func NewChannelMoments(c int, clipMean, clipSq float64, collectNorms bool) *ChannelMoments {
	return &ChannelMoments{collect: collectNorms, sumMean: make([]float64, c), sumSq: make([]float64, c), clipMean: clipMean, clipSq: clipSq,
		m: make([]float64, c), s: make([]float64, c)}
}

// Add accumulates the examples of z ([B C H W]); z is not modified.
func (cm *ChannelMoments) Add(z *tensor.Tensor) {
	if len(z.Shape) != 4 || z.Shape[1] != len(cm.sumMean) {
		panic(&tensor.ShapeError{Op: "ChannelMoments.Add", Msg: fmt.Sprintf("features %v, want [B %d H W]", z.Shape, len(cm.sumMean))})
	}
	b, c, hw := z.Shape[0], z.Shape[1], z.Shape[2]*z.Shape[3]
	for i := 0; i < b; i++ {
		for ch := 0; ch < c; ch++ {
			var s1, s2 float64
			for _, v := range z.Data[(i*c+ch)*hw : (i*c+ch+1)*hw] {
				s1 += float64(v)
				s2 += float64(v) * float64(v)
			}
			cm.m[ch], cm.s[ch] = s1/float64(hw), s2/float64(hw)
		}
		if cm.collect {
			cm.normsM = append(cm.normsM, l2(cm.m))
			cm.normsS = append(cm.normsS, l2(cm.s))
		}
		if clipTo(cm.m, cm.clipMean) {
			cm.clippedM++
		}
		if clipTo(cm.s, cm.clipSq) {
			cm.clippedS++
		}
		for ch := 0; ch < c; ch++ {
			cm.sumMean[ch] += cm.m[ch]
			cm.sumSq[ch] += cm.s[ch]
		}
		cm.n++
	}
}

func l2(v []float64) float64 {
	var sq float64
	for _, x := range v {
		sq += x * x
	}
	return math.Sqrt(sq)
}

// Examples returns how many examples were added.
func (cm *ChannelMoments) Examples() int { return cm.n }

// NormQuantiles returns the p-quantiles of the examples' unclipped ‖m_i‖
// and ‖s_i‖ (collectNorms runs only; nil otherwise), to help choose C_μ
// and C_s on public data.
func (cm *ChannelMoments) NormQuantiles(ps ...float64) (m, s []float64) {
	if !cm.collect {
		return nil, nil
	}
	return quantiles(cm.normsM, ps...), quantiles(cm.normsS, ps...)
}

// quantiles returns the p-quantiles of v (sorted in place).
func quantiles(v []float64, ps ...float64) []float64 {
	sort.Float64s(v)
	out := make([]float64, len(ps))
	for i, p := range ps {
		if len(v) > 0 {
			out[i] = v[min(len(v)-1, int(p*float64(len(v))))]
		}
	}
	return out
}

// clipTo scales v to L2 norm ≤ bound (bound ≤ 0: no clipping) with the
// clip factor of DP-SGD (ClipFactors: min(1, C/(‖v‖+1e-6)) rounded
// down, 0 for a non-finite norm) and reports whether it scaled v.
func clipTo(v []float64, bound float64) bool {
	if bound <= 0 {
		return false
	}
	n := l2(v)
	var f [1]float32
	if ClipFactors(f[:], []float64{n * n}, bound) == 0 {
		return false
	}
	for k := range v {
		v[k] *= float64(f[0])
	}
	return true
}

// Release returns the noisy sums' statistics μ = M̃/n and
// v = max(S̃/n − μ², 0), from M̃ = M + 𝒩(0, (σ_n·C_μ)²) and
// S̃ = S + 𝒩(0, (σ_n·C_s)²) per channel (σ_n = 0: no noise, exact), and
// the event of the release it made: DataNormEvent(σ_n), or nil when σ_n =
// 0 (nothing private was released: a non-private run).
//
// The noise is applied to the released values themselves, in float64, by
// NoiseSource.AddGaussian64: a secure source releases M̃ = g·round((M +
// σ_n·C_μ·Z)/g), a multiple of its grid g whatever the low bits of M, and
// μ, v and their later float32 rounding (nn.Standardize) are computed from
// M̃ and S̃ only, so they are post-processing. (Adding noise drawn on a zero
// buffer to M instead would release fl(M + n), whose low bits are M's: the
// floating-point attack the secure sampler exists to stop.) The secure
// sampler's float64 bound |M| ≤ 2^22·σ_n·C_μ holds since |M| ≤ n·C_μ,
// whenever n ≤ 2^22·σ_n (about 4.2 million examples per unit of σ_n).
func (cm *ChannelMoments) Release(noise NoiseSource, sigmaN float64, n int) (mean, variance []float64, ev accounting.Event) {
	c := len(cm.sumMean)
	M := append([]float64(nil), cm.sumMean...)
	S := append([]float64(nil), cm.sumSq...)
	if sigmaN > 0 {
		noise.AddGaussian64(M, sigmaN*cm.clipMean)
		noise.AddGaussian64(S, sigmaN*cm.clipSq)
	}
	mean, variance = make([]float64, c), make([]float64, c)
	for k := range mean {
		mean[k] = M[k] / float64(n)
		variance[k] = math.Max(S[k]/float64(n)-mean[k]*mean[k], 0)
	}
	if sigmaN > 0 {
		ev = DataNormEvent(sigmaN)
	}
	return mean, variance, ev
}
