package train

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dptrain/accounting"
	"dptrain/checkpoint"
	"dptrain/internal/mnistdata"
)

func mnistSpec(t *testing.T) string {
	t.Helper()
	d, err := mnistdata.Dir()
	if err != nil {
		t.Fatal(err)
	}
	return "mnist:" + d
}

// smallConfig is a fast private run on a slice of real MNIST.
func smallConfig(t *testing.T) Config {
	spec := mnistSpec(t)
	var c Config
	yml := `
model: cnn-mnist
train_data: ` + spec + `
test_data: ` + spec + `
max_train_examples: 1200
max_test_examples: 500
batch_size: 60
physical_batch_size: 25
steps: 10
clip_norm: 1.0
noise_multiplier: 1.1
optimizer: nesterov
learning_rate: 0.5
lr_schedule: cosine
warmup_steps: 2
ema_decay: 0.9
checkpoint_every: 3
crop: random
crop_padding: 2
aug_multiplicity: 2
noise: seeded
seed: 7
`
	if err := ParseConfig([]byte(yml), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func finalWeights(t *testing.T, out string) (map[string]checkpoint.Tensor, *Summary) {
	t.Helper()
	ck, _, _, err := checkpoint.LoadLatest(filepath.Join(out, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	var s Summary
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return ck.Tensors["weights"], &s
}

// TestResumeMatchesUninterrupted: a run stopped between checkpoints and
// re-run with the same config ends with bit-identical weights and the same
// ε as an uninterrupted run, and the ledger never records fewer steps than
// were taken.
func TestResumeMatchesUninterrupted(t *testing.T) {
	cfg := smallConfig(t)
	a := t.TempDir()
	if _, err := Run(cfg, Options{Out: a}); err != nil {
		t.Fatal(err)
	}
	wa, sa := finalWeights(t, a)
	if sa.Steps != 10 || !(float64(sa.Epsilon) > 0) || !(float64(sa.TestAccuracy) > 0) {
		t.Fatalf("summary %+v", sa)
	}

	b := t.TempDir()
	for i, stop := range []int{5, 1, 2} { // stops at steps 5, 6 (after resuming at 3→… ), …
		_, err := Run(cfg, Options{Out: b, StopAfter: stop})
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("interrupted run %d: %v", i, err)
		}
	}
	if _, err := Run(cfg, Options{Out: b}); err != nil {
		t.Fatal(err)
	}
	wb, sb := finalWeights(t, b)
	for name, ta := range wa {
		tb := wb[name]
		for i := range ta.Data {
			if ta.Data[i] != tb.Data[i] {
				t.Fatalf("%s[%d]: resumed %g, uninterrupted %g", name, i, tb.Data[i], ta.Data[i])
			}
		}
	}
	if float64(sa.Epsilon) != float64(sb.Epsilon) || sa.Steps != sb.Steps || float64(sa.TestAccuracy) != float64(sb.TestAccuracy) {
		t.Fatalf("resumed summary ε=%g steps=%d acc=%g, uninterrupted ε=%g steps=%d acc=%g", float64(sb.Epsilon), sb.Steps, float64(sb.TestAccuracy), float64(sa.Epsilon), sa.Steps, float64(sa.TestAccuracy))
	}
	// metrics.jsonl has each step exactly once.
	m, _ := os.ReadFile(filepath.Join(b, "metrics.jsonl"))
	if n := strings.Count(string(m), `"type":"step"`); n != 10 {
		t.Fatalf("metrics.jsonl has %d step lines after resumes, want 10", n)
	}
	for _, f := range []string{"report.md", "loss.png", "epsilon.png", "accuracy.png"} {
		if _, err := os.Stat(filepath.Join(b, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
}

func TestResumeRefusesOtherConfig(t *testing.T) {
	cfg := smallConfig(t)
	out := t.TempDir()
	if _, err := Run(cfg, Options{Out: out, StopAfter: 3}); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	cfg.NoiseMultiplier = 0.5
	_, err := Run(cfg, Options{Out: out})
	if err == nil || !strings.Contains(err.Error(), "different configuration") {
		t.Fatalf("resume with another σ: %v", err)
	}
}

func TestCorruptNewestCheckpointFallsBack(t *testing.T) {
	cfg := smallConfig(t)
	out := t.TempDir()
	if _, err := Run(cfg, Options{Out: out, StopAfter: 7}); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	list, err := checkpoint.List(filepath.Join(out, "checkpoints"))
	if err != nil || len(list) < 2 {
		t.Fatalf("checkpoints %v, %v", list, err)
	}
	newest := list[len(list)-1]
	f := filepath.Join(newest.Path, "weights.safetensors")
	b, _ := os.ReadFile(f)
	b[len(b)-3] ^= 0xff
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if _, err := Run(cfg, Options{Out: out, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "skipping checkpoint") || !strings.Contains(log.String(), "resumed from") {
		t.Fatalf("log does not report the corrupt checkpoint and the fallback:\n%s", log.String())
	}
	ref := t.TempDir()
	if _, err := Run(cfg, Options{Out: ref}); err != nil {
		t.Fatal(err)
	}
	w1, _ := finalWeights(t, out)
	w2, _ := finalWeights(t, ref)
	for name, a := range w2 {
		for i := range a.Data {
			if a.Data[i] != w1[name].Data[i] {
				t.Fatalf("after falling back, %s differs from an uninterrupted run", name)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"model: cnn-mnist\nbogus_key: 1\n", "bogus_key"},
		{"noise_multiplier: 1\ntarget_epsilon: 3\n", "both set"},
		{"clip_norm: 0\n", "clip_norm"},
		{"private: false\nnoise_multiplier: 1\n", "contradictory"},
		{"sampling: shuffle\nnoise_multiplier: 1\n", "not covered"},
		{"accountant: moments\n", "accountant"},
		{"epochs: 1\nsteps: 5\n", "both set"},
		{"delta: 2\n", "delta"},
		{"optimizer: adam\nmomentum: 0.9\n", "momentum: 0.9 is not used by optimizer adam"},
		{"optimizer: sgd\nmomentum: 0.5\n", "momentum: 0.5 is not used by optimizer sgd"},
	} {
		var c Config
		base := "model: cnn-mnist\ntrain_data: mnist:/x\nbatch_size: 10\nepochs: 1\nclip_norm: 1\nlearning_rate: 0.1\nnoise_multiplier: 1\n"
		err := ParseConfig([]byte(base), &c)
		if err == nil {
			err = ParseConfig([]byte(tc.yaml), &c)
		}
		if err == nil {
			err = c.validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one mentioning %q", tc.yaml, err, tc.want)
		}
	}
	var c Config
	if err := c.ApplyOverride("no-such-flag", "1"); err == nil || !strings.Contains(err.Error(), "unknown flag --no-such-flag") {
		t.Errorf("unknown flag: %v", err)
	}
	if err := c.ApplyOverride("clip-norm", "abc"); err == nil || !strings.Contains(err.Error(), "clip-norm") {
		t.Errorf("bad value: %v", err)
	}
	if err := c.ApplyOverride("target-epsilon", "3"); err != nil || c.TargetEpsilon != 3 {
		t.Errorf("override: %v %g", err, c.TargetEpsilon)
	}
}

func TestDefaultDelta(t *testing.T) {
	for n, want := range map[int]float64{60000: 1e-5, 50000: 1e-5, 1281167: 1e-7, 100: 1e-3, 99: 1e-2, 1000: 1e-4, 100000: 1e-6} {
		if got := DefaultDelta(n); got != want {
			t.Errorf("DefaultDelta(%d) = %g, want %g", n, got, want)
		}
	}
}

func TestBudgetStopsTraining(t *testing.T) {
	cfg := smallConfig(t)
	cfg.NoiseMultiplier = 0
	cfg.TargetEpsilon = 2
	cfg.Steps = 30
	cfg.CheckpointEvery = 100
	out := t.TempDir()
	s, err := Run(cfg, Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if float64(s.Epsilon) > 2 || s.Steps > 30 {
		t.Fatalf("ε=%g after %d steps, budget 2", float64(s.Epsilon), s.Steps)
	}
	if float64(s.Epsilon) < 1.5 {
		t.Errorf("ε=%g: calibration left most of the budget unused", float64(s.Epsilon))
	}
}

// TestSecureModeCountsLostSteps: in secure mode, steps taken after the last
// checkpoint and lost in a crash are re-run with fresh noise, so the ledger
// counts them as spent.
func TestSecureModeCountsLostSteps(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Noise = "secure"
	out := t.TempDir()
	if _, err := Run(cfg, Options{Out: out, StopAfter: 5}); !errors.Is(err, ErrStopped) { // checkpoint at 3, crash at 5
		t.Fatal(err)
	}
	s, err := Run(cfg, Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	led := latestLedger(t, out)
	if s.Steps != 10 || led.Len() != 12 {
		t.Fatalf("%d steps, ledger %d: want 10 steps and 12 recorded (2 lost)", s.Steps, led.Len())
	}
	want, _ := led.Epsilon("pld", s.Delta)
	if float64(s.Epsilon) != want {
		t.Fatalf("summary ε %g, ledger ε %g", float64(s.Epsilon), want)
	}
	rep, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !strings.Contains(string(rep), "2 steps taken before an interruption") {
		t.Errorf("report does not mention the lost steps:\n%s", rep)
	}
}

// latestLedger reads the ledger of the newest checkpoint in out.
func latestLedger(t *testing.T, out string) *accounting.Ledger {
	t.Helper()
	ck, _, _, err := checkpoint.LoadLatest(filepath.Join(out, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	var led accounting.Ledger
	if err := led.UnmarshalJSON(ck.Blobs["ledger.json"]); err != nil {
		t.Fatal(err)
	}
	return &led
}
