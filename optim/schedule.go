package optim

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Schedule gives the learning rate for an update. step counts updates
// already applied: the first update uses LR(0).
type Schedule interface {
	LR(step int64) float64
}

// Constant is a fixed learning rate.
type Constant struct{ Value float64 }

// LR returns c.Value.
func (c Constant) LR(int64) float64 { return c.Value }

// LinearWarmup scales Then linearly up over the first Steps updates:
// LR(t) = Then.LR(t) · (f + (1 − f)·(t+1)/Steps) for t < Steps, with f =
// StartFactor, and Then.LR(t) afterwards. The ramp ends at t+1 = Steps, and
// even with f = 0 the first update has a non-zero rate (Then.LR(0)/Steps):
// in DP-SGD every update costs privacy, so none is wasted at rate 0. Then
// runs on the same step count (it is not delayed by the warm-up).
type LinearWarmup struct {
	Steps       int64
	StartFactor float64
	Then        Schedule
}

// LR returns the warmed-up rate.
func (w LinearWarmup) LR(t int64) float64 {
	lr := w.Then.LR(t)
	if t < w.Steps {
		f := w.StartFactor
		lr *= f + (1-f)*float64(max(t, 0)+1)/float64(w.Steps)
	}
	return lr
}

// Cosine decays from Init at step 0 to Final at step Total (and stays there):
// LR(t) = Final + (Init − Final)·(1 + cos(π·t/Total))/2.
type Cosine struct {
	Init, Final float64
	Total       int64
}

// LR returns the cosine-decayed rate.
func (c Cosine) LR(t int64) float64 {
	x := float64(min(max(t, 0), c.Total)) / float64(c.Total)
	return c.Final + (c.Init-c.Final)*(1+math.Cos(math.Pi*x))/2
}

// StepDecay multiplies Init by Gamma at each milestone: LR(t) = Init·Gamma^k
// with k the number of milestones ≤ t (milestones ascending).
type StepDecay struct {
	Init       float64
	Milestones []int64
	Gamma      float64
}

// LR returns the step-decayed rate.
func (s StepDecay) LR(t int64) float64 {
	k, _ := slices.BinarySearch(s.Milestones, t+1) // milestones ≤ t
	return s.Init * math.Pow(s.Gamma, float64(k))
}

// ScheduleKind names a learning-rate schedule; its values are the
// config's lr_schedule names.
type ScheduleKind string

// Schedule kinds for ScheduleConfig.
const (
	SchedConstant ScheduleKind = "constant"
	SchedCosine   ScheduleKind = "cosine"
	SchedStep     ScheduleKind = "step"
)

// ScheduleKinds lists the schedule kinds.
func ScheduleKinds() []string { return []string{"constant", "cosine", "step"} }

// ParseScheduleKind returns the schedule kind named s, or an error listing
// the kinds.
func ParseScheduleKind(s string) (ScheduleKind, error) {
	if slices.Contains(ScheduleKinds(), s) {
		return ScheduleKind(s), nil
	}
	return "", fmt.Errorf("want one of %s; got %q", strings.Join(ScheduleKinds(), ", "), s)
}

// ScheduleConfig describes a schedule as it appears in a run's
// configuration; Build validates it and returns the Schedule.
type ScheduleConfig struct {
	Kind              ScheduleKind // constant, cosine or step
	LR                float64      // base (peak) learning rate, > 0
	WarmupSteps       int64        // linear warm-up length; 0 for none
	WarmupStartFactor float64      // warm-up starts at this fraction of LR, in [0, 1]
	TotalSteps        int64        // cosine: length of the decay, > WarmupSteps
	FinalLR           float64      // cosine: rate at TotalSteps, in [0, LR]
	Milestones        []int64      // step: ascending steps > 0 where the rate is multiplied by Gamma
	Gamma             float64      // step: factor in (0, 1]
}

// Build returns the schedule, or an error naming the first invalid field
// (fields that do not apply to the kind must be left zero).
func (c ScheduleConfig) Build() (Schedule, error) {
	bad := func(field, want string, got any) error {
		return fmt.Errorf("optim: schedule.%s: want %s for kind %q, got %v", field, want, c.Kind, got)
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		return nil, bad("lr", "a finite value > 0", c.LR)
	}
	if c.WarmupSteps < 0 {
		return nil, bad("warmup_steps", "a value >= 0", c.WarmupSteps)
	}
	if !(c.WarmupStartFactor >= 0 && c.WarmupStartFactor <= 1) {
		return nil, bad("warmup_start_factor", "a value in [0, 1]", c.WarmupStartFactor)
	}
	if c.WarmupSteps == 0 && c.WarmupStartFactor != 0 {
		return nil, bad("warmup_start_factor", "0 without warmup_steps", c.WarmupStartFactor)
	}
	cosineOnly := c.Kind != SchedCosine && (c.TotalSteps != 0 || c.FinalLR != 0)
	stepOnly := c.Kind != SchedStep && (len(c.Milestones) != 0 || c.Gamma != 0)
	var s Schedule
	switch {
	case cosineOnly && c.TotalSteps != 0:
		return nil, bad("total_steps", "0 (only kind cosine uses it)", c.TotalSteps)
	case cosineOnly:
		return nil, bad("final_lr", "0 (only kind cosine uses it)", c.FinalLR)
	case stepOnly && len(c.Milestones) != 0:
		return nil, bad("milestones", "none (only kind step uses them)", c.Milestones)
	case stepOnly:
		return nil, bad("gamma", "0 (only kind step uses it)", c.Gamma)
	}
	switch c.Kind {
	case SchedConstant:
		s = Constant{c.LR}
	case SchedCosine:
		if c.TotalSteps <= c.WarmupSteps {
			return nil, bad("total_steps", fmt.Sprintf("a value > warmup_steps (%d)", c.WarmupSteps), c.TotalSteps)
		}
		if !(c.FinalLR >= 0 && c.FinalLR <= c.LR) {
			return nil, bad("final_lr", fmt.Sprintf("a value in [0, lr = %v]", c.LR), c.FinalLR)
		}
		s = Cosine{Init: c.LR, Final: c.FinalLR, Total: c.TotalSteps}
	case SchedStep:
		if len(c.Milestones) == 0 {
			return nil, bad("milestones", "at least one step", "none")
		}
		for i, m := range c.Milestones {
			if m <= 0 || (i > 0 && m <= c.Milestones[i-1]) {
				return nil, bad("milestones", "strictly ascending steps > 0", c.Milestones)
			}
		}
		if !(c.Gamma > 0 && c.Gamma <= 1) {
			return nil, bad("gamma", "a value in (0, 1]", c.Gamma)
		}
		s = StepDecay{Init: c.LR, Milestones: slices.Clone(c.Milestones), Gamma: c.Gamma}
	default:
		_, err := ParseScheduleKind(string(c.Kind))
		return nil, fmt.Errorf("optim: schedule.kind: %w", err)
	}
	if c.WarmupSteps > 0 {
		s = LinearWarmup{Steps: c.WarmupSteps, StartFactor: c.WarmupStartFactor, Then: s}
	}
	return s, nil
}
