package train

import (
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
		alt := ""
		if r.kind == "pld" {
			alt = "accountant: rdp, or "
		}
		return fmt.Errorf("noise_multiplier %g: the %s accountant cannot evaluate ε of the %d planned steps (q = %.4g, δ = %g): %v; use %sa larger noise_multiplier, or target_epsilon to calibrate σ",
			r.sigma, r.kind, r.totalSteps, r.q, r.delta, err, alt)
	}
	if c.TargetEpsilon == 0 && (math.IsInf(eps, 1) || math.IsNaN(eps)) {
		return fmt.Errorf("noise_multiplier %g: ε of the %d planned steps is %v at δ = %g: there would be no guarantee; use a larger noise_multiplier or a larger delta", r.sigma, r.totalSteps, eps, r.delta)
	}
	r.plannedEps = eps
	return nil
}
