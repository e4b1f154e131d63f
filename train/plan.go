package train

import (
	"errors"
	"fmt"
	"math"

	"dptrain/accounting"
	"dptrain/dpsgd"
	"dptrain/optim"
)

// plan is what a run will do, derived from its configuration and the size
// of its training set alone: no data, model or disk. makePlan is pure, so
// everything that decides what is released (q, σ, the number of steps,
// the budget) is tested without training.
type plan struct {
	N       int             // training examples
	Q       float64         // sampling rate q = B/N
	Sigma   float64         // noise multiplier σ: given, or calibrated to target_epsilon; 0 non-private
	Delta   float64         // δ (0 non-private)
	Kind    accounting.Kind // accountant (pld, rdp; "" non-private)
	Planned int64           // steps the config asks for (steps, or ⌈epochs·N/B⌉)
	// Total is where the run ends: Planned, or fewer when the budget
	// target_epsilon allows fewer at the calibrated σ.
	Total int64
	// MaxLedgerSteps (with a target ε) is how many Step(q, σ) events the
	// budget allows in the ledger after Prior, steps lost to crashes in
	// secure mode included; 0 without a target.
	MaxLedgerSteps int64
	// Prior is the release before the DP-SGD steps (private data
	// normalisation), nil if none.
	Prior accounting.Event
	// Epsilon is ε(δ) of Prior and Total steps, computed before the first
	// step (NaN non-private).
	Epsilon  float64
	Schedule optim.ScheduleConfig
	// Privacy is the mechanism's configuration (private runs).
	Privacy dpsgd.PrivacyConfig
}

// Private reports whether the plan releases anything.
func (p plan) Private() bool { return p.Kind != "" }

// stepEvent is the event of one DP-SGD step of the plan.
func (p plan) stepEvent() accounting.Event { return accounting.Step(p.Q, p.Sigma) }

// makePlan derives the plan of c (with its defaults applied) for n
// training examples, refusing before anything is spent a run whose
// guarantee cannot be evaluated, would be meaningless, or whose noisy sums
// would leave the range where they are exact.
func makePlan(c Config, n int) (plan, error) {
	p := plan{N: n, Q: float64(c.BatchSize) / float64(n), Epsilon: math.NaN()}
	var err error
	if p.Planned, err = plannedSteps(&c, n); err != nil {
		return p, err
	}
	p.Total = p.Planned
	if c.IsPrivate() {
		if err := p.privacy(c); err != nil {
			return p, err
		}
	}
	p.Schedule = scheduleConfig(c, n, p.Total)
	return p, nil
}

// privacy fills the private half of the plan: δ, σ, the budget, ε of the
// planned schedule and the mechanism's configuration.
func (p *plan) privacy(c Config) error {
	p.Kind, p.Delta, p.Sigma = accounting.Kind(c.Accountant), c.Delta, c.NoiseMultiplier
	if p.Delta >= 1/float64(p.N) && !c.AllowLargeDelta {
		return fmt.Errorf("delta: %g ≥ 1/N = %g (N = %d training examples): such a δ allows a mechanism that publishes an example outright with probability δ; use delta < 1/N (the default is %g), or set allow_large_delta: true to accept it (the report and summary will say so)", p.Delta, 1/float64(p.N), p.N, DefaultDelta(p.N))
	}
	if c.FeatureNorm == "data" {
		p.Prior = dpsgd.DataNormEvent(c.DataNormNoiseMultiplier)
	}
	if c.TargetEpsilon > 0 {
		var err error
		budget := accounting.Budget{Epsilon: c.TargetEpsilon, Delta: p.Delta}
		s := accounting.Schedule{SamplingRate: p.Q, Steps: int(p.Planned), Prior: p.Prior}
		if p.Sigma, _, err = accounting.CalibrateNoise(p.Kind, budget, s); err != nil {
			return fmt.Errorf("target_epsilon %g: %w", c.TargetEpsilon, err)
		}
		s.NoiseMultiplier = p.Sigma
		maxSteps, err := accounting.MaxSteps(p.Kind, budget, s)
		if err != nil {
			return fmt.Errorf("target_epsilon %g: %w", c.TargetEpsilon, err)
		}
		p.MaxLedgerSteps = int64(maxSteps)
		p.Total = min(p.Total, int64(maxSteps))
	}
	if err := p.checkEpsilon(c); err != nil {
		return err
	}
	p.Privacy = dpsgd.PrivacyConfig{ClipNorm: c.ClipNorm, NoiseMultiplier: p.Sigma, ExpectedBatchSize: float64(c.BatchSize),
		SamplingRate: p.Q, PerLayerClipping: c.PerLayerClipping, AugMultiplicity: c.AugMultiplicity}
	if err := p.Privacy.Validate(); err != nil {
		return err
	}
	if err := checkClipRange(c.ClipNorm, p.Sigma, c.BatchSize); err != nil {
		return err
	}
	if c.Noise == string(dpsgd.ModeSecure) {
		return p.checkSecureRange(c)
	}
	return nil
}

// scheduleConfig is the learning-rate schedule of c for a run of total
// steps (warm-up given in steps, or in epochs of n examples).
func scheduleConfig(c Config, n int, total int64) optim.ScheduleConfig {
	warm := int64(c.WarmupSteps)
	if warm == 0 && c.WarmupEpochs > 0 {
		warm = int64(math.Round(c.WarmupEpochs * float64(n) / float64(c.BatchSize)))
	}
	sc := optim.ScheduleConfig{Kind: optim.ScheduleKind(c.LRSchedule), LR: c.LearningRate, WarmupSteps: warm}
	switch sc.Kind {
	case optim.SchedCosine:
		sc.TotalSteps, sc.FinalLR = max(total, warm+1), c.FinalLR
	case optim.SchedStep:
		sc.Gamma = c.LRGamma
		for _, m := range c.LRMilestones {
			sc.Milestones = append(sc.Milestones, int64(m))
		}
	}
	return sc
}

// maxPlannedSteps bounds the length of a run (the limit `dptrain privacy`
// applies too): beyond it no accountant can evaluate the schedule.
const maxPlannedSteps = 1 << 40

// plannedSteps is the number of steps a config asks for (steps, or
// ⌈epochs·N/B⌉), refused when it is not between 1 and maxPlannedSteps.
func plannedSteps(c *Config, n int) (int64, error) {
	if c.Steps > 0 {
		if int64(c.Steps) > maxPlannedSteps {
			return 0, fmt.Errorf("steps: %d, want 1 to %d", c.Steps, int64(maxPlannedSteps))
		}
		return int64(c.Steps), nil
	}
	f := math.Ceil(c.Epochs * float64(n) / float64(c.BatchSize))
	if !(f >= 1) || f > maxPlannedSteps {
		return 0, fmt.Errorf("epochs: %g epochs of %d examples in batches of %d is %.4g steps: want 1 to %d", c.Epochs, n, c.BatchSize, f, int64(maxPlannedSteps))
	}
	return int64(f), nil
}

// checkEpsilon computes ε of the whole planned schedule (the prior
// release and every planned step) before the first step, so that a run
// whose guarantee cannot be evaluated, or would be meaningless, is refused
// before it spends anything.
func (p *plan) checkEpsilon(c Config) error {
	var led accounting.Ledger
	if p.Prior != nil {
		if err := led.Record(p.Prior); err != nil {
			return err
		}
	}
	if err := led.RecordN(p.stepEvent(), int(p.Total)); err != nil {
		return fmt.Errorf("noise_multiplier %g: %w", p.Sigma, err)
	}
	eps, err := led.Epsilon(p.Kind, p.Delta)
	if err != nil {
		if errors.Is(err, accounting.ErrTooLarge) {
			// The accountant's error already says what to change.
			return fmt.Errorf("noise_multiplier %g: the %s accountant cannot evaluate ε of the %d planned steps (q = %.4g, δ = %g): %w", p.Sigma, p.Kind, p.Total, p.Q, p.Delta, err)
		}
		alt := ""
		if p.Kind == "pld" {
			alt = "accountant: rdp, or "
		}
		return fmt.Errorf("noise_multiplier %g: the %s accountant cannot evaluate ε of the %d planned steps (q = %.4g, δ = %g): %w; use %sa larger noise_multiplier, or target_epsilon to calibrate σ",
			p.Sigma, p.Kind, p.Total, p.Q, p.Delta, err, alt)
	}
	if c.TargetEpsilon == 0 && (math.IsInf(eps, 1) || math.IsNaN(eps)) {
		return fmt.Errorf("noise_multiplier %g: ε of the %d planned steps is %v at δ = %g: there would be no guarantee; use a larger noise_multiplier or a larger delta", p.Sigma, p.Total, eps, p.Delta)
	}
	p.Epsilon = eps
	return nil
}

// checkClipRange refuses a clip norm whose noisy sums overflow float32:
// B clipped gradients of norm C plus noise of standard deviation σC must
// stay far below float32's largest value (3.4e38), or the update is Inf.
func checkClipRange(clip, sigma float64, batch int) error {
	limit := maxClipScale
	if v := clip * (float64(batch) + 10*max(sigma, 1)); v > limit || math.IsInf(v, 0) {
		return fmt.Errorf("clip_norm: %g is too large: sums of %d clipped gradients plus noise of σ·C = %g would overflow float32 (keep C·(B + 10σ) ≤ %g; clip norms are usually 0.1 to 10)", clip, batch, sigma*clip, limit)
	}
	return nil
}

// maxClipScale bounds C·(B + 10σ) (checkClipRange); tests lift it to reach
// the check that no non-finite update is ever applied.
var maxClipScale = 1e30

// secureRange is the bound |x| ≤ 2^22·std under which the secure sampler's
// float64 sum x + std·Z is exact to its output grid (dpsgd.SecureNoise).
const secureRange = 1 << 22

// checkSecureRange refuses a configuration whose released sums can exceed
// the secure sampler's range: a clipped sum has |x| ≤ (realised batch)·C
// per coordinate with noise std σ·C, so the batch must stay below 2^22·σ
// (checked at 1.5·B + 100, beyond which a Poisson batch practically never
// goes), and the data-normalisation sums, |x| ≤ N·C_μ with std σ_n·C_μ,
// need N ≤ 2^22·σ_n.
func (p *plan) checkSecureRange(c Config) error {
	if b := 1.5*float64(c.BatchSize) + 100; b > secureRange*p.Sigma {
		return fmt.Errorf("noise_multiplier %g is too small for batch_size %d in secure mode: the hardened sampler needs the clipped sum of a batch below 2^22·σ·C (batches up to %.0f examples at this σ); use a larger noise_multiplier or a smaller batch", p.Sigma, c.BatchSize, (secureRange*p.Sigma-100)/1.5)
	}
	if p.Prior != nil && float64(p.N) > secureRange*c.DataNormNoiseMultiplier {
		return fmt.Errorf("data_norm_noise_multiplier %g is too small for %d training examples in secure mode: the hardened sampler needs N ≤ 2^22·σ_n; use data_norm_noise_multiplier ≥ %.3g", c.DataNormNoiseMultiplier, p.N, float64(p.N)/secureRange)
	}
	return nil
}
