package train

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"dptrain/accounting"
	"dptrain/checkpoint"
	"dptrain/dpsgd"
)

func dataNormConfig(t *testing.T) Config {
	cfg := smallConfig(t)
	cfg.Model = "scatternet-linear"
	cfg.FeatureNorm = "data"
	cfg.DataNormMeanClip = 2
	cfg.DataNormSqClip = 8
	cfg.NoiseMultiplier = 0
	cfg.TargetEpsilon = 2
	cfg.ClipNorm = 0.1
	cfg.LearningRate = 1
	cfg.MaxTrainExamples = 300
	cfg.MaxTestExamples = 100
	return cfg
}

// TestDataNormPrivateRun: the statistics release is the first ledger entry,
// σ is calibrated for it and the steps together (ε ≤ target, as the
// accountant recomputes it from the events), the statistics are in the
// checkpoint, and an interrupted run resumes to the same weights and ε
// without releasing the statistics again.
func TestDataNormPrivateRun(t *testing.T) {
	cfg := dataNormConfig(t)
	a := t.TempDir()
	sa, err := Run(cfg, Options{Out: a})
	if err != nil {
		t.Fatal(err)
	}
	if float64(sa.Epsilon) > cfg.TargetEpsilon || sa.Steps != int64(cfg.Steps) {
		t.Fatalf("ε=%g after %d steps, target %g", float64(sa.Epsilon), sa.Steps, cfg.TargetEpsilon)
	}
	ck, _, _, err := checkpoint.LoadLatest(a + "/checkpoints")
	if err != nil {
		t.Fatal(err)
	}
	var led accounting.Ledger
	if err := led.UnmarshalJSON(ck.Blobs["ledger.json"]); err != nil {
		t.Fatal(err)
	}
	es := led.Entries()
	prior := dpsgd.DataNormEvent(8)
	if len(es) != 2 || es[0].Count != 1 || es[0].Event.String() != prior.String() || es[1].Count != cfg.Steps {
		t.Fatalf("ledger %v, want the release then %d steps", es, cfg.Steps)
	}
	want, err := accounting.Epsilon(accounting.KindPLD, sa.Delta, accounting.Schedule{SamplingRate: sa.SamplingRate, NoiseMultiplier: sa.NoiseMultiplier, Steps: cfg.Steps, Prior: prior})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(sa.Epsilon)-want) > 1e-9 {
		t.Errorf("summary ε=%g, accountant on prior+steps %g", float64(sa.Epsilon), want)
	}
	alone, _ := accounting.Epsilon(accounting.KindPLD, sa.Delta, accounting.Schedule{SamplingRate: sa.SamplingRate, NoiseMultiplier: sa.NoiseMultiplier, Steps: cfg.Steps})
	if !(float64(sa.Epsilon) > alone) {
		t.Errorf("ε=%g does not count the release (steps alone %g)", float64(sa.Epsilon), alone)
	}
	if rep, err := os.ReadFile(a + "/report.md"); err != nil || !strings.Contains(string(rep), "Data normalisation") {
		t.Errorf("report.md does not describe the statistics release (%v)", err)
	}
	mean, ok := ck.Tensors["weights"]["scatter_norm.mean"]
	if !ok {
		t.Fatal("checkpoint lacks scatter_norm.mean")
	}
	nonzero := 0
	for _, v := range mean.Data {
		if v != 0 {
			nonzero++
		}
	}
	if nonzero == 0 {
		t.Error("statistics not set (all means 0)")
	}

	b := t.TempDir()
	if _, err := Run(cfg, Options{Out: b, StopAfter: 4}); !errors.Is(err, ErrStopped) {
		t.Fatalf("interrupted run: %v", err)
	}
	sb, err := Run(cfg, Options{Out: b})
	if err != nil {
		t.Fatal(err)
	}
	wb, _ := finalWeights(t, b)
	for name, ta := range ck.Tensors["weights"] {
		for i := range ta.Data {
			if ta.Data[i] != wb[name].Data[i] {
				t.Fatalf("%s[%d]: resumed %g, uninterrupted %g", name, i, wb[name].Data[i], ta.Data[i])
			}
		}
	}
	if float64(sb.Epsilon) != float64(sa.Epsilon) {
		t.Errorf("resumed ε=%g, uninterrupted %g", float64(sb.Epsilon), float64(sa.Epsilon))
	}
}

// TestDataNormConfigErrors: the data_norm keys are checked and named.
func TestDataNormConfigErrors(t *testing.T) {
	base := dataNormConfig(t)
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no mean clip", func(c *Config) { c.DataNormMeanClip = 0 }, "data_norm_mean_clip"},
		{"no sq clip", func(c *Config) { c.DataNormSqClip = -1 }, "data_norm_sq_clip"},
		{"negative σ_n", func(c *Config) { c.DataNormNoiseMultiplier = -2 }, "data_norm_noise_multiplier"},
		{"not scatternet", func(c *Config) { c.Model = "cnn-mnist" }, "feature_norm"},
		{"keys without data norm", func(c *Config) { c.FeatureNorm = "" }, "data_norm_"},
		{"unknown norm", func(c *Config) { c.FeatureNorm = "batch" }, "feature_norm"},
	}
	for _, tc := range cases {
		c := base
		tc.edit(&c)
		err := c.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.want)
		}
	}
	if err := base.validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
