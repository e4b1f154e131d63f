package train

import (
	"fmt"

	"dptrain/accounting"
	"dptrain/data"
	"dptrain/dpsgd"
	"dptrain/nn"
	"dptrain/tensor"
)

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
// a private run. It returns the event of the release (nil for a public
// run), which the caller records before anything derived from it is
// written.
func (r *run) computeDataNorm() (accounting.Event, error) {
	c := &r.cfg
	std, idx := r.model.dataNorm, r.model.dataNormIdx
	layers := r.model.model.Layers
	for _, l := range layers[:idx] {
		for _, p := range l.Params() {
			if !p.Frozen {
				return nil, fmt.Errorf("feature_norm: data: layer %q below the normalisation is trained; the statistics must come from fixed layers", l.Describe())
			}
		}
	}
	clipM, clipS, sigmaN := 0.0, 0.0, 0.0
	if c.IsPrivate() {
		clipM, clipS, sigmaN = c.DataNormMeanClip, c.DataNormSqClip, c.DataNormNoiseMultiplier
	}
	cm := dpsgd.NewChannelMoments(std.C, clipM, clipS, !c.IsPrivate())
	chunk := max(c.PhysicalBatchSize, 64)
	err := data.EvalBatches(r.data.train, r.data.tr, chunk, 0, func(b *data.Batch) error {
		n := b.N * b.K
		if n == 0 {
			return nil
		}
		z := tensor.FromData(b.X[:n*b.C*b.H*b.W], n, b.C, b.H, b.W)
		for _, l := range layers[:idx] {
			z = l.Forward(z, false)
		}
		cm.Add(z)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("feature_norm: data: %w", err)
	}
	n := r.plan.N
	if cm.Examples() != n {
		return nil, fmt.Errorf("feature_norm: data: saw %d training examples, want %d", cm.Examples(), n)
	}
	mean, variance, ev := cm.Release(r.noise, sigmaN, n)
	if err := std.SetStats(mean, variance); err != nil {
		return nil, err
	}
	if c.IsPrivate() {
		// How many examples were clipped is not private: not reported.
		r.logf("data normalisation: per-channel statistics of %d channels from %d examples, released with σ_n=%g, C_μ=%g, C_s=%g",
			std.C, cm.Examples(), sigmaN, clipM, clipS)
	} else {
		qm, qs := cm.NormQuantiles(0.5, 0.9, 0.99, 1)
		r.logf("data normalisation: exact per-channel statistics of %d channels from %d examples (non-private run); ‖m_i‖ quantiles 50/90/99/100%%: %.4g %.4g %.4g %.4g, ‖s_i‖: %.4g %.4g %.4g %.4g",
			std.C, cm.Examples(), qm[0], qm[1], qm[2], qm[3], qs[0], qs[1], qs[2], qs[3])
	}
	return ev, nil
}
