package train

import (
	"errors"
	"fmt"
	"math"

	"dptrain/accounting"
)

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

// checkPlannedEpsilon computes ε of the whole planned schedule (the prior
// release and every planned step) before the first step, so that a run
// whose guarantee cannot be evaluated, or would be meaningless, is refused
// before it spends anything.
func (r *run) checkPlannedEpsilon() error {
	c := &r.cfg
	var led accounting.Ledger
	if r.prior != nil {
		if err := led.Record(r.prior); err != nil {
			return err
		}
	}
	if err := led.RecordN(accounting.Step(r.q, r.sigma), int(r.totalSteps)); err != nil {
		return fmt.Errorf("noise_multiplier %g: %w", r.sigma, err)
	}
	eps, err := led.Epsilon(r.kind, r.delta)
	if err != nil {
		if errors.Is(err, accounting.ErrTooLarge) {
			// The accountant's error already says what to change.
			return fmt.Errorf("noise_multiplier %g: the %s accountant cannot evaluate ε of the %d planned steps (q = %.4g, δ = %g): %w", r.sigma, r.kind, r.totalSteps, r.q, r.delta, err)
		}
		alt := ""
		if r.kind == "pld" {
			alt = "accountant: rdp, or "
		}
		return fmt.Errorf("noise_multiplier %g: the %s accountant cannot evaluate ε of the %d planned steps (q = %.4g, δ = %g): %w; use %sa larger noise_multiplier, or target_epsilon to calibrate σ",
			r.sigma, r.kind, r.totalSteps, r.q, r.delta, err, alt)
	}
	if c.TargetEpsilon == 0 && (math.IsInf(eps, 1) || math.IsNaN(eps)) {
		return fmt.Errorf("noise_multiplier %g: ε of the %d planned steps is %v at δ = %g: there would be no guarantee; use a larger noise_multiplier or a larger delta", r.sigma, r.totalSteps, eps, r.delta)
	}
	r.plannedEps = eps
	return nil
}

// applyBudget sets where a run with a target ε stops: the last step the
// budget allows given what the ledger already holds (steps lost to
// interruptions and repeated prior releases included), so that the run's
// final step, with its checkpoint, is that step.
func (r *run) applyBudget() error {
	c := &r.cfg
	if !c.IsPrivate() || c.TargetEpsilon == 0 {
		return nil
	}
	if r.priorCount > 1 {
		maxSteps, err := accounting.MaxStepsAfter(r.kind, c.TargetEpsilon, r.delta, r.q, r.sigma, r.priorEvent())
		if err != nil {
			return fmt.Errorf("target_epsilon %g after %d data-normalisation releases: %w", c.TargetEpsilon, r.priorCount, err)
		}
		r.maxLedgerSteps = int64(maxSteps)
	}
	used := int64(r.ledger.Len()) - r.priorLen()
	if end := r.step + max(r.maxLedgerSteps-used, 0); end < r.totalSteps {
		r.logf("budget: ε=%g with %d steps lost to interruptions (%d releases before training) allows %d steps; the run ends at step %d", c.TargetEpsilon, r.lostSteps, r.priorLen(), r.maxLedgerSteps, end)
		r.totalSteps = end
	}
	return nil
}

// secureRange is the bound |x| ≤ 2^22·std under which the secure sampler's
// float64 sum x + std·Z is exact to its output grid (dpsgd.SecureNoise).
const secureRange = 1 << 22

// checkSecureRange refuses a configuration whose released sums can exceed
// the secure sampler's range: a clipped sum has |x| ≤ (realised batch)·C
// per coordinate with noise std σ·C, so the batch must stay below 2^22·σ
// (checked at 1.5·B + 100, beyond which a Poisson batch practically never
// goes), and the data-normalisation sums, |x| ≤ N·C_μ with std σ_n·C_μ,
// need N ≤ 2^22·σ_n.
func (r *run) checkSecureRange() error {
	c := &r.cfg
	if b := 1.5*float64(c.BatchSize) + 100; b > secureRange*r.sigma {
		return fmt.Errorf("noise_multiplier %g is too small for batch_size %d in secure mode: the hardened sampler needs the clipped sum of a batch below 2^22·σ·C (batches up to %.0f examples at this σ); use a larger noise_multiplier or a smaller batch", r.sigma, c.BatchSize, (secureRange*r.sigma-100)/1.5)
	}
	if r.prior != nil && float64(r.n) > secureRange*c.DataNormNoiseMultiplier {
		return fmt.Errorf("data_norm_noise_multiplier %g is too small for %d training examples in secure mode: the hardened sampler needs N ≤ 2^22·σ_n; use data_norm_noise_multiplier ≥ %.3g", c.DataNormNoiseMultiplier, r.n, float64(r.n)/secureRange)
	}
	return nil
}
