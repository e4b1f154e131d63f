package train

import (
	"fmt"
	"math"
	"sort"

	"dptrain/accounting"
	"dptrain/data"
	"dptrain/dpsgd"
	"dptrain/nn"
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

// dataNormEvent is the accounting event of the statistics release.
func dataNormEvent(sigmaN float64) accounting.Event {
	return accounting.SelfComposed{Event: accounting.Gaussian{NoiseMultiplier: sigmaN}, Count: 2}
}

// channelMoments accumulates Σ clip(m_i) and Σ clip(s_i).
type channelMoments struct {
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

func newChannelMoments(c int, clipMean, clipSq float64) *channelMoments {
	return &channelMoments{sumMean: make([]float64, c), sumSq: make([]float64, c), clipMean: clipMean, clipSq: clipSq,
		m: make([]float64, c), s: make([]float64, c)}
}

// add accumulates the examples of z ([B C H W]).
func (cm *channelMoments) add(z *tensor.Tensor) {
	if len(z.Shape) != 4 || z.Shape[1] != len(cm.sumMean) {
		panic(&tensor.ShapeError{Op: "channelMoments.add", Msg: fmt.Sprintf("features %v, want [B %d H W]", z.Shape, len(cm.sumMean))})
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
// clip factor of DP-SGD (dpsgd.ClipFactors: min(1, C/(‖v‖+1e-6)) rounded
// down, 0 for a non-finite norm) and reports whether it scaled v.
func clipTo(v []float64, bound float64) bool {
	if bound <= 0 {
		return false
	}
	n := l2(v)
	var f [1]float32
	if dpsgd.ClipFactors(f[:], []float64{n * n}, bound) == 0 {
		return false
	}
	for k := range v {
		v[k] *= float64(f[0])
	}
	return true
}

// release returns the noisy sums' statistics μ = M̃/n and
// v = max(S̃/n − μ², 0), from M̃ = M + 𝒩(0, (σ_n·C_μ)²) and
// S̃ = S + 𝒩(0, (σ_n·C_s)²) per channel (σ_n = 0: no noise, exact).
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
func (cm *channelMoments) release(noise dpsgd.NoiseSource, sigmaN float64, n int) (mean, variance []float64) {
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
	return mean, variance
}

// findStandardize returns the model's top-level Standardize layer and its
// index, or nil.
func findStandardize(m *nn.Model) (*nn.Standardize, int) {
	for i, l := range m.Layers {
		if s, ok := l.(*nn.Standardize); ok {
			return s, i
		}
	}
	return nil, -1
}

// computeDataNorm runs the training set (evaluation transform) through the
// layers below the Standardize layer and sets its statistics, privately in
// a private run (the caller records dataNormEvent in the ledger).
func (r *run) computeDataNorm() error {
	c := &r.cfg
	std, idx := r.dataNorm, r.dataNormIdx
	for _, l := range r.model.Layers[:idx] {
		for _, p := range l.Params() {
			if !p.Frozen {
				return fmt.Errorf("feature_norm: data: layer %q below the normalisation is trained; the statistics must come from fixed layers", l.Describe())
			}
		}
	}
	clipM, clipS, sigmaN := 0.0, 0.0, 0.0
	if c.IsPrivate() {
		clipM, clipS, sigmaN = c.DataNormMeanClip, c.DataNormSqClip, c.DataNormNoiseMultiplier
	}
	cm := newChannelMoments(std.C, clipM, clipS)
	cm.collect = !c.IsPrivate()
	chunk := max(c.PhysicalBatchSize, 64)
	err := data.EvalBatches(r.trainDS, r.tr, chunk, 0, func(b *data.Batch) error {
		n := b.N * b.K
		if n == 0 {
			return nil
		}
		z := tensor.FromData(b.X[:n*b.C*b.H*b.W], n, b.C, b.H, b.W)
		for _, l := range r.model.Layers[:idx] {
			z = l.Forward(z, false)
		}
		cm.add(z)
		return nil
	})
	if err != nil {
		return fmt.Errorf("feature_norm: data: %w", err)
	}
	if cm.n != r.n {
		return fmt.Errorf("feature_norm: data: saw %d training examples, want %d", cm.n, r.n)
	}
	mean, variance := cm.release(r.noise, sigmaN, r.n)
	if err := std.SetStats(mean, variance); err != nil {
		return err
	}
	if c.IsPrivate() {
		// How many examples were clipped is not private: not reported.
		r.logf("data normalisation: per-channel statistics of %d channels from %d examples, released with σ_n=%g, C_μ=%g, C_s=%g",
			std.C, cm.n, sigmaN, clipM, clipS)
	} else {
		qm, qs := quantiles(cm.normsM, 0.5, 0.9, 0.99, 1), quantiles(cm.normsS, 0.5, 0.9, 0.99, 1)
		r.logf("data normalisation: exact per-channel statistics of %d channels from %d examples (non-private run); ‖m_i‖ quantiles 50/90/99/100%%: %.4g %.4g %.4g %.4g, ‖s_i‖: %.4g %.4g %.4g %.4g",
			std.C, cm.n, qm[0], qm[1], qm[2], qm[3], qs[0], qs[1], qs[2], qs[3])
	}
	return nil
}
