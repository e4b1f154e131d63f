package dpsgd

import (
	"math"

	"dptrain/accounting"
	"dptrain/dist"
	"dptrain/internal/fault"
	"dptrain/nn"
	"dptrain/tensor"
)

// PrivateStep runs the private half of one logical DP-SGD step on a model:
// physical batches are added with Accumulate (per-example clipping without
// per-example gradients), then Finish adds the Gaussian noise once and
// divides by the expected batch size. The result is in the trainable
// parameters' Grad, ready for the optimizer.
type PrivateStep struct {
	Model  *nn.Model
	Config PrivacyConfig
	// Noise draws 𝒩(0, σ²C²); with Comm of several ranks only rank 0's is
	// used, on the all-reduced sum (the others may leave it nil).
	Noise NoiseSource
	// Comm, when it has more than one rank (data-parallel training), is the
	// group whose ranks each Accumulate their own share of the logical
	// batch; Finish sums the shares. nil: one process.
	Comm dist.Comm
	// MaterializeBudget is passed to nn (floats per layer; ≤0: default).
	MaterializeBudget int

	loss    nn.SoftmaxCrossEntropy
	weights []float32
	coef    []float32
	stats   StepStats
	flat    []float32 // the packed gradients of the all-reduce
	grads   [][]float32
}

// StepStats summarises one logical step.
type StepStats struct {
	Examples int     // examples in the logical batch (Poisson: varies)
	Clipped  int     // examples whose gradient was scaled down
	LossSum  float64 // Σ over rows of the per-row loss
	Rows     int     // rows seen (examples × K)
	NormSum  float64 // Σ ‖g_i‖ before clipping
	MaxNorm  float64
	NoiseStd float64 // σ·C of the noise added to the sum
	Physical int     // physical batches
}

// MeanLoss is the mean per-row training loss of the step.
func (s StepStats) MeanLoss() float64 {
	if s.Rows == 0 {
		return math.NaN()
	}
	return s.LossSum / float64(s.Rows)
}

// Begin zeroes the gradients and statistics for a new logical batch.
func (p *PrivateStep) Begin() {
	p.Model.ZeroGrad()
	p.stats = StepStats{}
}

// Accumulate adds the clipped per-example gradients of one physical batch:
// x holds n·K rows (K = AugMultiplicity consecutive rows per example),
// labels one per row. It returns the per-row losses (owned by the step).
func (p *PrivateStep) Accumulate(x *tensor.Tensor, labels []int) []float32 {
	k := p.Config.AugMultiplicity
	rows := x.Shape[0]
	if rows == 0 {
		return nil
	}
	if rows%k != 0 || len(labels) != rows {
		usagef("PrivateStep.Accumulate", "%d rows, %d labels, multiplicity %d", rows, len(labels), k)
	}
	n := rows / k
	losses := p.loss.Forward(p.Model.Forward(x, true), labels)
	p.weights = growF32(p.weights, 1)
	p.weights[0] = 1 / float32(k) // the example's loss is the mean over its K augmentations
	res := p.Model.BackwardPerExample(p.loss.Backward(p.weights), nn.PerExampleOptions{
		Group: k, PerLayer: p.Config.PerLayerClipping, MaterializeBudget: p.MaterializeBudget})
	p.coef = growF32(p.coef, n)
	if p.Config.PerLayerClipping {
		norms := PerLayerClipNorms(p.Config.ClipNorm, len(res.Layers))
		clipped := make(map[int]bool)
		for l, layer := range res.Layers {
			ClipFactors(p.coef, res.LayerNorms[l], norms[l])
			for i, c := range p.coef {
				if c < 1 {
					clipped[i] = true
				}
			}
			layer.AccumulateClipped(p.coef)
		}
		p.stats.Clipped += len(clipped)
	} else {
		p.stats.Clipped += ClipFactors(p.coef, res.SqNorms, p.Config.ClipNorm)
		p.Model.AccumulateClipped(p.coef)
	}
	for _, s := range res.SqNorms {
		nrm := math.Sqrt(s)
		p.stats.NormSum += nrm
		p.stats.MaxNorm = max(p.stats.MaxNorm, nrm)
	}
	for _, l := range losses {
		p.stats.LossSum += float64(l)
	}
	p.stats.Examples += n
	p.stats.Rows += rows
	p.stats.Physical++
	return losses
}

// Finish adds 𝒩(0, σ²C²) to the clipped sum of every trainable parameter
// once per logical batch and divides by the expected batch size B (never by
// the realised size, which would leak it). It returns the step's statistics
// and the event of exactly the release it made: one Poisson-sampled
// Gaussian mechanism with the configured sampling rate q and noise
// multiplier σ (accounting.Step(q, σ)). The caller records the event
// before anything derived from the parameters' Grad is written out.
//
// With a Comm of R > 1 ranks, each rank holds the clipped sum of its own
// share of the batch: one all-reduce sums the R shares, rank 0 alone adds
// the noise to the total exactly as one process does (the same noise
// source, snapped in secure mode, applied to the value released), and
// broadcasts the noisy total, so z is drawn once, by one rank, added
// exactly once, and every rank ends with the same bits and returns the
// same event and (summed) statistics. (Adding the noise to rank 0's share
// before the reduction would be cheaper by one broadcast but would add the
// other shares after the snapping, putting low bits of their sums into the
// output: the floating-point attack the secure sampler exists to stop.)
// An error is a failed collective: the parameters' Grad is unusable.
func (p *PrivateStep) Finish() (StepStats, accounting.Event, error) {
	std := p.Config.NoiseMultiplier * p.Config.ClipNorm
	ranks := p.Comm != nil && p.Comm.Size() > 1
	p.grads = p.grads[:0]
	for _, prm := range p.Model.Params() {
		if !prm.Frozen {
			p.grads = append(p.grads, prm.Grad)
		}
	}
	if ranks {
		if err := SumAcrossRanks(p.Comm, p.grads, &p.flat); err != nil {
			return StepStats{}, nil, err
		}
		if err := SumStats(p.Comm, &p.stats); err != nil {
			return StepStats{}, nil, err
		}
	}
	if std > 0 && (!ranks || p.Comm.Rank() == 0) {
		if p.Noise == nil {
			usagef("PrivateStep.Finish", "noise multiplier %g but no NoiseSource", p.Config.NoiseMultiplier)
		}
		drawn := std
		if f := fault.Injected.NoiseScale; f != 0 {
			drawn *= f // a broken mechanism, for the audit's tests only
		}
		for _, g := range p.grads {
			p.Noise.AddGaussian(g, drawn)
		}
	}
	if ranks && std > 0 {
		if err := BroadcastFromRank0(p.Comm, p.grads, &p.flat); err != nil {
			return StepStats{}, nil, err
		}
	}
	inv := float32(1 / p.Config.ExpectedBatchSize)
	for _, g := range p.grads {
		for i := range g {
			g[i] *= inv
		}
	}
	p.stats.NoiseStd = std
	sigma := p.Config.NoiseMultiplier
	if f := fault.Injected.LedgerSigmaScale; f != 0 {
		sigma *= f // a broken ledger, for the audit's tests only
	}
	return p.stats, accounting.Step(p.Config.SamplingRate, sigma), nil
}

func growF32(b []float32, n int) []float32 {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]float32, n)
}
