package train

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"dptrain/accounting"
	"dptrain/dpsgd"
	"dptrain/optim"
)

// planConfig is a valid private config for n examples, defaults applied.
func planConfig(mod func(*Config)) Config {
	c := Config{Model: "cnn-mnist", TrainData: "mnist:/x", BatchSize: 100, Epochs: 2, ClipNorm: 1,
		NoiseMultiplier: 1.1, LearningRate: 0.5, Seed: 1}
	if mod != nil {
		mod(&c)
	}
	return c.withDefaults(runFacts{N: 10_000, C: 1, H: 28, W: 28})
}

// TestMakePlan checks the plan against values computed here from the
// definitions (q = B/N, T = ⌈epochs·N/B⌉) and against a ledger built
// independently from the events the plan says it will release.
func TestMakePlan(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(*Config)
		check func(t *testing.T, p plan)
	}{
		{"sigma given", nil, func(t *testing.T, p plan) {
			if p.Q != 0.01 || p.Planned != 200 || p.Total != 200 || p.Sigma != 1.1 || p.Delta != 1e-5 || p.Kind != accounting.KindPLD {
				t.Fatalf("plan %+v", p)
			}
			if p.Privacy.SamplingRate != p.Q || p.Privacy.NoiseMultiplier != p.Sigma || p.Privacy.ExpectedBatchSize != 100 || p.Privacy.ClipNorm != 1 {
				t.Fatalf("mechanism %+v does not carry the plan's q, σ, B, C", p.Privacy)
			}
			if p.stepEvent() != accounting.Step(0.01, 1.1) {
				t.Fatalf("step event %v", p.stepEvent())
			}
			var led accounting.Ledger
			led.RecordN(accounting.Step(0.01, 1.1), 200)
			want, _ := led.Epsilon(accounting.KindPLD, 1e-5)
			if p.Epsilon != want {
				t.Fatalf("planned ε %v, ledger of 200 steps %v", p.Epsilon, want)
			}
		}},
		{"steps override epochs", func(c *Config) { c.Epochs, c.Steps = 0, 37 }, func(t *testing.T, p plan) {
			if p.Planned != 37 || p.Total != 37 {
				t.Fatalf("planned %d total %d, want 37", p.Planned, p.Total)
			}
		}},
		{"target epsilon", func(c *Config) { c.NoiseMultiplier, c.TargetEpsilon = 0, 2 }, func(t *testing.T, p plan) {
			var led accounting.Ledger
			led.RecordN(accounting.Step(p.Q, p.Sigma), int(p.Total))
			eps, _ := led.Epsilon(accounting.KindPLD, p.Delta)
			if eps > 2 || eps < 1.9 || p.Epsilon != eps {
				t.Fatalf("σ=%v gives ε=%v over %d steps (plan says %v), want just below 2", p.Sigma, eps, p.Total, p.Epsilon)
			}
			if p.MaxLedgerSteps < p.Total {
				t.Fatalf("budget allows %d steps, the plan takes %d", p.MaxLedgerSteps, p.Total)
			}
		}},
		{"data normalisation is a prior release", func(c *Config) {
			c.Model, c.FeatureNorm, c.DataNormMeanClip, c.DataNormSqClip = "scatternet-cnn", "data", 1, 1
			c.NoiseMultiplier, c.TargetEpsilon = 0, 2
		}, func(t *testing.T, p plan) {
			if !reflect.DeepEqual(p.Prior, dpsgd.DataNormEvent(defaultDataNormNoiseMultiplier)) {
				t.Fatalf("prior %v", p.Prior)
			}
			alone := makePlanT(t, planConfig(func(c *Config) { c.NoiseMultiplier, c.TargetEpsilon = 0, 2 }))
			if !(p.Sigma > alone.Sigma) {
				t.Fatalf("σ with the prior release %v, without %v: the release is not paid for", p.Sigma, alone.Sigma)
			}
			var led accounting.Ledger
			led.Record(p.Prior)
			led.RecordN(p.stepEvent(), int(p.Total))
			if eps, _ := led.Epsilon(accounting.KindPLD, p.Delta); eps > 2 {
				t.Fatalf("ε of prior + steps %v > 2", eps)
			}
		}},
		{"rdp accountant", func(c *Config) { c.Accountant = "rdp" }, func(t *testing.T, p plan) {
			var led accounting.Ledger
			led.RecordN(accounting.Step(0.01, 1.1), 200)
			want, _ := led.Epsilon(accounting.KindRDP, 1e-5)
			if p.Kind != accounting.KindRDP || p.Epsilon != want {
				t.Fatalf("kind %v ε %v, want rdp %v", p.Kind, p.Epsilon, want)
			}
		}},
		{"public", func(c *Config) { f := false; c.Private, c.NoiseMultiplier = &f, 0 }, func(t *testing.T, p plan) {
			if p.Private() || p.Sigma != 0 || p.Delta != 0 || !math.IsNaN(p.Epsilon) || p.Prior != nil {
				t.Fatalf("public plan %+v", p)
			}
		}},
		{"cosine schedule spans the run", func(c *Config) { c.LRSchedule, c.WarmupEpochs, c.FinalLR = "cosine", 0.5, 0.01 }, func(t *testing.T, p plan) {
			want := optim.ScheduleConfig{Kind: optim.SchedCosine, LR: 0.5, WarmupSteps: 50, TotalSteps: 200, FinalLR: 0.01}
			if !reflect.DeepEqual(p.Schedule, want) {
				t.Fatalf("schedule %+v, want %+v", p.Schedule, want)
			}
		}},
		{"step schedule", func(c *Config) { c.LRSchedule, c.LRMilestones, c.LRGamma = "step", []int{50, 150}, 0.1 }, func(t *testing.T, p plan) {
			want := optim.ScheduleConfig{Kind: optim.SchedStep, LR: 0.5, Milestones: []int64{50, 150}, Gamma: 0.1}
			if !reflect.DeepEqual(p.Schedule, want) {
				t.Fatalf("schedule %+v, want %+v", p.Schedule, want)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, makePlanT(t, planConfig(tc.mod))) })
	}
}

func makePlanT(t *testing.T, c Config) plan {
	t.Helper()
	p, err := makePlan(c, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMakePlanRefuses: what cannot be released safely is refused before
// anything is spent, with the key to change.
func TestMakePlanRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(*Config)
	}{
		{"delta ≥ 1/N", "delta: 0.001 ≥ 1/N", func(c *Config) { c.Delta = 1e-3 }},
		{"too small σ for secure sums", "too small for batch_size", func(c *Config) {
			c.NoiseMultiplier, c.Noise, c.Accountant, c.BatchSize, c.Epochs, c.Steps = 0.003, "secure", "rdp", 10_000, 0, 1
		}},
		{"overflowing clip norm", "clip_norm: 1e+35 is too large", func(c *Config) { c.ClipNorm = 1e35 }},
		{"PLD cannot evaluate", "use accountant: rdp", func(c *Config) { c.NoiseMultiplier = 1e-4 }},
		{"too many epochs", "epochs: 1e+12 epochs", func(c *Config) { c.Epochs = 1e12 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := makePlan(planConfig(tc.mod), 10_000)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := makePlan(planConfig(func(c *Config) { c.Delta, c.AllowLargeDelta = 1e-3, true }), 10_000); err != nil {
		t.Fatalf("allow_large_delta: %v", err)
	}
}

// TestWithDefaults: every default, applied once; values the user set are
// kept; applying twice changes nothing; the input is not modified.
func TestWithDefaults(t *testing.T) {
	in := Config{Model: "cnn-mnist", TrainData: "mnist:/x", TestData: "mnist:/x", BatchSize: 1000, Epochs: 1, ClipNorm: 1, NoiseMultiplier: 1, LearningRate: 1}
	orig := in
	f := runFacts{N: 60_000, C: 1, H: 28, W: 28, Steps: 60}
	got := in.withDefaults(f)
	if !reflect.DeepEqual(in, orig) {
		t.Fatal("withDefaults modified its receiver")
	}
	want := in
	want.AugMultiplicity, want.KeepCheckpoints, want.Sampling, want.Optimizer, want.LRSchedule = 1, 3, "poisson", "momentum", "constant"
	want.Accountant, want.Noise, want.Delta, want.PhysicalBatchSize, want.Normalize = "pld", "secure", 1e-5, 256, "mnist"
	want.CheckpointEvery, want.LogEvery, want.EvalEvery = 3, 1, 15
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", got, want)
	}
	if again := got.withDefaults(f); !reflect.DeepEqual(again, got) {
		t.Fatalf("applying twice changed %+v to %+v", got, again)
	}
	set := in
	set.Optimizer, set.Noise, set.Delta, set.PhysicalBatchSize, set.EvalEvery, set.Normalize = "adam", "seeded", 1e-7, 50, 7, "none"
	if g := set.withDefaults(f); g.Optimizer != "adam" || g.Noise != "seeded" || g.Delta != 1e-7 || g.PhysicalBatchSize != 50 || g.EvalEvery != 7 || g.Normalize != "none" {
		t.Fatalf("user values overridden: %+v", g)
	}
	pub := in
	no := false
	pub.Private, pub.NoiseMultiplier, pub.TestData = &no, 0, ""
	if g := pub.withDefaults(f); g.Accountant != "" || g.Noise != "" || g.Delta != 0 || g.EvalEvery != 0 {
		t.Fatalf("public run got private defaults or an eval cadence without test data: %+v", g)
	}
}
