package dpsgd

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"dptrain/dist"
	"dptrain/tensor"
)

// finishOnRanks runs one logical step on size in-process ranks, rank i
// accumulating parts[i] (nil: an empty share), rank 0 with noise from
// seed; it returns every rank's gradient vector and statistics.
func finishOnRanks(t *testing.T, cfg PrivacyConfig, seed uint64, parts [][2]any) ([][]float64, []StepStats) {
	return finishOnRanksWith(t, cfg, NewSeededNoise(seed), parts)
}

func finishOnRanksWith(t *testing.T, cfg PrivacyConfig, noise NoiseSource, parts [][2]any) ([][]float64, []StepStats) {
	t.Helper()
	comms := dist.Local(len(parts))
	grads := make([][]float64, len(parts))
	stats := make([]StepStats, len(parts))
	errs := make([]error, len(parts))
	models := make([]*PrivateStep, len(parts))
	for i := range parts {
		models[i] = &PrivateStep{Model: mnistModel(t), Config: cfg, Comm: comms[i]}
		if i == 0 {
			models[i].Noise = noise
		}
	}
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := models[i]
			s.Begin()
			if p[0] != nil {
				s.Accumulate(p[0].(*tensor.Tensor), p[1].([]int))
			}
			stats[i], _, errs[i] = s.Finish()
			grads[i] = gradVector(s.Model)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", i, err)
		}
	}
	return grads, stats
}

// TestRanksNoiseAddedOnce: with two ranks and empty shares, every rank's
// update is bit-for-bit the one-process noise 𝒩(0, σ²C²)/B of the same
// seed: rank 0 drew it once, nobody else added any.
func TestRanksNoiseAddedOnce(t *testing.T) {
	cfg := PrivacyConfig{ClipNorm: 2, NoiseMultiplier: 1.5, ExpectedBatchSize: 10, SamplingRate: 0.01, AugMultiplicity: 1}
	one := &PrivateStep{Model: mnistModel(t), Config: cfg, Noise: NewSeededNoise(9)}
	one.Begin()
	want, _ := mustFinish(t, one)
	wantG := gradVector(one.Model)
	grads, stats := finishOnRanks(t, cfg, 9, [][2]any{{nil, nil}, {nil, nil}})
	for r, g := range grads {
		for i, v := range g {
			if math.Float64bits(v) != math.Float64bits(wantG[i]) {
				t.Fatalf("rank %d: coordinate %d is %g, one process %g: the noise was not added exactly once", r, i, v, wantG[i])
			}
		}
		if stats[r].NoiseStd != want.NoiseStd || stats[r].Examples != 0 {
			t.Fatalf("rank %d stats %+v", r, stats[r])
		}
	}
}

// TestRanksSumShares: two ranks holding halves of a batch end with the
// clipped sum of the whole batch (up to float32 summation order) and its
// summed statistics, the maximum norm included.
func TestRanksSumShares(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	x, labels := batch(r, 8, 1, 5)
	cfg := PrivacyConfig{ClipNorm: 0.5, ExpectedBatchSize: 1, AugMultiplicity: 1}
	one := &PrivateStep{Model: mnistModel(t), Config: cfg, Noise: NewSeededNoise(1)}
	one.Begin()
	one.Accumulate(x, labels)
	want, _ := mustFinish(t, one)
	wantG := gradVector(one.Model)
	grads, stats := finishOnRanks(t, cfg, 1, [][2]any{{x.Slice0(0, 3), labels[:3]}, {x.Slice0(3, 8), labels[3:]}})
	var d, n float64
	for i, v := range grads[1] {
		if math.Float64bits(v) != math.Float64bits(grads[0][i]) {
			t.Fatalf("coordinate %d: rank 0 %g, rank 1 %g", i, grads[0][i], v)
		}
		d = max(d, math.Abs(v-wantG[i]))
		n = max(n, math.Abs(wantG[i]))
	}
	if d > 1e-6*n {
		t.Fatalf("2 ranks' sum is %g (max abs) from one process's (max %g)", d, n)
	}
	// The losses are float32 values of forwards over 3, 5 and 8 rows, whose
	// products the kernels may block differently by row count (seen on an
	// AMD Zen 5, one ulp in one example's loss): equal up to float32
	// rounding, like the norms, not to the bit.
	for rk, st := range stats {
		if st.Examples != want.Examples || st.Clipped != want.Clipped || st.Physical != 2 || math.Abs(st.MaxNorm-want.MaxNorm) > 1e-6*want.MaxNorm ||
			math.Abs(st.LossSum-want.LossSum) > 1e-6*math.Abs(want.LossSum) {
			t.Fatalf("rank %d stats %+v, one process %+v", rk, st, want)
		}
	}
}

// TestRanksSecureNoiseOnTheTotal: in secure mode the released coordinates
// are on the sampler's grid even when the other ranks' shares are small
// (noise added to the all-reduced total, not to rank 0's share before it:
// that would put low bits of the other shares into the output).
func TestRanksSecureNoiseOnTheTotal(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 7))
	x, labels := batch(r, 4, 1, -1)
	for i := range x.Data {
		x.Data[i] *= 1e-3 // small gradients: tiny shares
	}
	cfg := PrivacyConfig{ClipNorm: 1, NoiseMultiplier: 1, ExpectedBatchSize: 1, SamplingRate: 0.01, AugMultiplicity: 1}
	sec := NewSecureNoise()
	grid := sec.Grid(cfg.NoiseMultiplier * cfg.ClipNorm)
	grads, _ := finishOnRanksWith(t, cfg, sec, [][2]any{{x.Slice0(0, 1), labels[:1]}, {x.Slice0(1, 4), labels[1:]}})
	off := 0
	for i, v := range grads[1] {
		if math.Float64bits(v) != math.Float64bits(grads[0][i]) {
			t.Fatalf("coordinate %d: rank 0 %g, rank 1 %g", i, grads[0][i], v)
		}
		if q := v / grid; q != math.Round(q) {
			off++
		}
	}
	if off > 0 {
		t.Fatalf("%d of %d released coordinates are off the secure grid %g", off, len(grads[1]), grid)
	}
}
