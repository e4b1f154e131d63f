package optim

import (
	"math"
	"strings"
	"testing"
)

func TestSchedules(t *testing.T) {
	// Values derived by hand from the definitions in schedule.go.
	for _, tc := range []struct {
		name string
		s    Schedule
		at   []int64
		want []float64
	}{
		{"constant", Constant{0.1}, []int64{0, 5, 1 << 40}, []float64{0.1, 0.1, 0.1}},
		// (1 + cos(π/4))/2 = (1 + 0.70710678)/2 = 0.85355339; clamped outside [0, 100].
		{"cosine", Cosine{Init: 1, Total: 100}, []int64{-5, 0, 25, 50, 100, 200},
			[]float64{1, 1, 0.8535533906, 0.5, 0, 0}},
		// Final 0.1: midpoint 0.1 + 0.9·0.5 = 0.55.
		{"cosine-final", Cosine{Init: 1, Final: 0.1, Total: 10}, []int64{0, 5, 10}, []float64{1, 0.55, 0.1}},
		{"step", StepDecay{Init: 1, Milestones: []int64{10, 20}, Gamma: 0.1}, []int64{0, 9, 10, 19, 20, 1000},
			[]float64{1, 1, 0.1, 0.1, 0.01, 0.01}},
		// Ramp (t+1)/4 over a constant 2: 0.5, 1, 1.5, 2, then 2.
		{"warmup", LinearWarmup{Steps: 4, Then: Constant{2}}, []int64{0, 1, 2, 3, 4, 100},
			[]float64{0.5, 1, 1.5, 2, 2, 2}},
		// Start factor 0.5 over 2 steps: 0.5 + 0.5·(1/2) = 0.75, then 1.
		{"warmup-start", LinearWarmup{Steps: 2, StartFactor: 0.5, Then: Constant{1}}, []int64{0, 1, 2},
			[]float64{0.75, 1, 1}},
		// Warm-up over cosine: the cosine is not delayed: t = 1 gives
		// (2/4)·(1 + cos(π/8))/2 = 0.5·0.9619397663 = 0.4809698831.
		{"warmup-cosine", LinearWarmup{Steps: 4, Then: Cosine{Init: 1, Total: 8}}, []int64{1, 4, 8},
			[]float64{0.4809698831, 0.5, 0}},
	} {
		for i, step := range tc.at {
			if got := tc.s.LR(step); math.Abs(got-tc.want[i]) > 1e-9 {
				t.Errorf("%s: LR(%d) = %.10f, want %.10f", tc.name, step, got, tc.want[i])
			}
		}
	}
}

func TestScheduleConfigBuild(t *testing.T) {
	s, err := ScheduleConfig{Kind: SchedCosine, LR: 2, WarmupSteps: 10, TotalSteps: 110, FinalLR: 0.2}.Build()
	if err != nil {
		t.Fatal(err)
	}
	// t = 0: warm-up factor 1/10 of Cosine(0) = 2 → 0.2; t = 55: 0.2 + 1.8·0.5 = 1.1.
	if got := s.LR(0); math.Abs(got-0.2) > 1e-12 {
		t.Errorf("LR(0) = %v, want 0.2", got)
	}
	if got := s.LR(55); math.Abs(got-1.1) > 1e-12 {
		t.Errorf("LR(55) = %v, want 1.1", got)
	}
	in := []int64{5, 7}
	s, err = ScheduleConfig{Kind: SchedStep, LR: 1, Milestones: in, Gamma: 0.5}.Build()
	if err != nil {
		t.Fatal(err)
	}
	in[0] = 100 // the schedule keeps its own copy
	if got := s.LR(6); got != 0.5 {
		t.Errorf("step LR(6) = %v, want 0.5", got)
	}
	if s, err := (ScheduleConfig{Kind: SchedConstant, LR: 0.3}).Build(); err != nil || s.LR(9) != 0.3 {
		t.Errorf("constant: %v, %v", s, err)
	}
}

func TestScheduleConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		c    ScheduleConfig
		want string
	}{
		{ScheduleConfig{Kind: "linear", LR: 1}, "schedule.kind"},
		{ScheduleConfig{Kind: SchedConstant}, "schedule.lr"},
		{ScheduleConfig{Kind: SchedConstant, LR: math.Inf(1)}, "schedule.lr"},
		{ScheduleConfig{Kind: SchedConstant, LR: 1, WarmupSteps: -1}, "schedule.warmup_steps"},
		{ScheduleConfig{Kind: SchedConstant, LR: 1, WarmupSteps: 3, WarmupStartFactor: 2}, "schedule.warmup_start_factor"},
		{ScheduleConfig{Kind: SchedConstant, LR: 1, WarmupStartFactor: 0.5}, "schedule.warmup_start_factor: want 0 without warmup_steps"},
		{ScheduleConfig{Kind: SchedConstant, LR: 1, TotalSteps: 5}, "schedule.total_steps: want 0 (only kind cosine"},
		{ScheduleConfig{Kind: SchedStep, LR: 1, Milestones: []int64{1}, Gamma: 0.1, FinalLR: 0.1}, "schedule.final_lr"},
		{ScheduleConfig{Kind: SchedCosine, LR: 1, TotalSteps: 5, Gamma: 0.1}, "schedule.gamma"},
		{ScheduleConfig{Kind: SchedCosine, LR: 1, TotalSteps: 5, Milestones: []int64{2}}, "schedule.milestones"},
		{ScheduleConfig{Kind: SchedCosine, LR: 1}, "schedule.total_steps"},
		{ScheduleConfig{Kind: SchedCosine, LR: 1, TotalSteps: 5, WarmupSteps: 5}, "schedule.total_steps: want a value > warmup_steps (5)"},
		{ScheduleConfig{Kind: SchedCosine, LR: 1, TotalSteps: 5, FinalLR: 2}, "schedule.final_lr"},
		{ScheduleConfig{Kind: SchedStep, LR: 1, Gamma: 0.1}, "schedule.milestones: want at least one"},
		{ScheduleConfig{Kind: SchedStep, LR: 1, Milestones: []int64{5, 5}, Gamma: 0.1}, "schedule.milestones: want strictly ascending"},
		{ScheduleConfig{Kind: SchedStep, LR: 1, Milestones: []int64{0}, Gamma: 0.1}, "schedule.milestones"},
		{ScheduleConfig{Kind: SchedStep, LR: 1, Milestones: []int64{5}}, "schedule.gamma"},
	} {
		_, err := tc.c.Build()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.c, err, tc.want)
		}
	}
}
