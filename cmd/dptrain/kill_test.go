package main

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"dptrain/accounting"
	"dptrain/checkpoint"
	"dptrain/internal/synthdata"
	"dptrain/train"
)

// TestMain lets the test binary act as the dptrain command when re-executed
// with DPTRAIN_TEST_MAIN=1, so that tests can run and SIGKILL real
// processes without building a separate binary.
func TestMain(m *testing.M) {
	if os.Getenv("DPTRAIN_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// killConfig writes a short seeded run of cnn-cifar on synthetic 3×32×32
// data whose convolutions take all three per-example norm rules (stored,
// materialise, ghost: the materialise budget is that of train's
// TestThreeRuleModelUsesEveryRule), at the default thread count.
func killConfig(t *testing.T, dir, noise string) string {
	data := filepath.Join(dir, "cifar")
	if err := synthdata.WriteCIFAR10(data, 240, 40, 2); err != nil {
		t.Fatal(err)
	}
	cfg := `model: cnn-cifar
train_data: cifar10:` + data + `
test_data: cifar10:` + data + `
batch_size: 12
physical_batch_size: 8
materialize_budget: 73728
steps: 40
clip_norm: 1
noise_multiplier: 1.2
learning_rate: 0.05
optimizer: momentum
ema_decay: 0.9
checkpoint_every: 3
keep_checkpoints: 2
noise: ` + noise + `
seed: 3
`
	p := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// killLoop runs `dptrain train` and SIGKILLs it at random moments (startup
// included, so kills land before, between and during checkpoint writes),
// re-running the same command until it finishes. It returns the number of kills and, counted independently
// of the journal, the steps whose results were seen: per attempt, the
// highest step line in metrics.jsonl after it ended minus the step it
// resumed from.
func killLoop(t *testing.T, cfgPath, out string, span time.Duration) (kills int, observed int64) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill-time seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	resumed := regexp.MustCompile(`resumed from \S+ \(step (\d+) of`)
	for attempt := 0; attempt < 40; attempt++ {
		cmd := exec.Command(os.Args[0], "train", "--config", cfgPath, "--out", out)
		cmd.Env = append(os.Environ(), "DPTRAIN_TEST_MAIN=1")
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		// Kill at 10–60% of a whole run's duration (resumed attempts have
		// less left to do, so most are killed too); from attempt 20 on, let
		// the run finish, so the loop always ends.
		deadline := time.After(span/10 + time.Duration(r.Int64N(int64(span)/2)))
		if attempt >= 20 {
			deadline = nil
		}
		done := false
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("run %d failed: %v\n%s", attempt, err, errb.String())
			}
			done = true
		case <-deadline:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			kills++
			// Whatever the kill interrupted, the newest valid checkpoint is
			// complete and its ledger and the journal cover every release
			// (checked on resume by the next run).
		}
		var from int64
		if m := resumed.FindStringSubmatch(errb.String()); m != nil {
			from, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if last := lastMetricsStep(t, filepath.Join(out, "metrics.jsonl")); last > from {
			observed += last - from
		}
		if done {
			return kills, observed
		}
	}
	t.Fatalf("run did not finish after %d kills", kills)
	return kills, observed
}

// lastMetricsStep is the highest step of the step lines of metrics.jsonl
// (0 if none; a line torn by a kill is ignored).
func lastMetricsStep(t *testing.T, path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var last int64
	for _, line := range strings.Split(string(b), "\n") {
		var m struct {
			Type string `json:"type"`
			Step int64  `json:"step"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Type == "step" && m.Step > last {
			last = m.Step
		}
	}
	return last
}

// TestSIGKILLResume kills a seeded `dptrain train` at random moments and
// re-runs it until it finishes: the final weights, ledger and ε equal
// those of an uninterrupted run bit for bit, the lost steps having been
// re-run and checked against the journal.
func TestSIGKILLResume(t *testing.T) {
	dir := t.TempDir()
	cfgPath := killConfig(t, dir, "seeded")
	ref := filepath.Join(dir, "ref")
	var stdout, stderr bytes.Buffer
	t0 := time.Now()
	if err := runTrain([]string{"--config", cfgPath, "--out", ref}, &stdout, &stderr); err != nil {
		t.Fatalf("reference run: %v\n%s", err, stderr.String())
	}
	out := filepath.Join(dir, "killed")
	kills, observed := killLoop(t, cfgPath, out, time.Since(t0)+300*time.Millisecond)
	t.Logf("finished after %d SIGKILLs; %d steps seen in metrics across attempts", kills, observed)
	want, _, _, err := checkpoint.LoadLatest(filepath.Join(ref, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	got, _, _, err := checkpoint.LoadLatest(filepath.Join(out, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != want.Step {
		t.Fatalf("final step %d, reference %d", got.Step, want.Step)
	}
	for g, ts := range want.Tensors {
		for name, w := range ts {
			gt := got.Tensors[g][name]
			for i := range w.Data {
				if math.Float32bits(w.Data[i]) != math.Float32bits(gt.Data[i]) {
					t.Fatalf("%s/%s[%d] = %g after kills, %g uninterrupted", g, name, i, gt.Data[i], w.Data[i])
				}
			}
		}
	}
	if !bytes.Equal(got.Blobs["ledger.json"], want.Blobs["ledger.json"]) {
		t.Fatalf("ledgers differ:\n%s\n%s", got.Blobs["ledger.json"], want.Blobs["ledger.json"])
	}
	var a, b train.Summary
	readJSON(t, filepath.Join(ref, "summary.json"), &a)
	readJSON(t, filepath.Join(out, "summary.json"), &b)
	if float64(a.Epsilon) != float64(b.Epsilon) || float64(a.TestAccuracy) != float64(b.TestAccuracy) {
		t.Fatalf("ε %g acc %g after kills; uninterrupted ε %g acc %g", float64(b.Epsilon), float64(b.TestAccuracy), float64(a.Epsilon), float64(a.TestAccuracy))
	}
}

// TestSIGKILLSecureCountsEveryRelease kills a secure-mode run at random
// moments: every release it ever made is in the journal, and the final
// ledger counts each of them (lost steps included) as one independent
// Step(q, σ), which is their exact cost because every process draws fresh
// batches and noise; ε is that of all of them.
func TestSIGKILLSecureCountsEveryRelease(t *testing.T) {
	dir := t.TempDir()
	cfgPath := killConfig(t, dir, "secure")
	out := filepath.Join(dir, "killed")
	t0 := time.Now()
	var stdout, stderr bytes.Buffer
	if err := runTrain([]string{"--config", cfgPath, "--out", filepath.Join(dir, "ref")}, &stdout, &stderr); err != nil {
		t.Fatalf("reference run: %v\n%s", err, stderr.String())
	}
	kills, observed := killLoop(t, cfgPath, out, time.Since(t0)+300*time.Millisecond)
	j, err := os.ReadFile(filepath.Join(out, "privacy-journal.log"))
	if err != nil {
		t.Fatal(err)
	}
	releases := len(strings.Split(strings.TrimSpace(string(j)), "\n")) - 1 // minus the header
	ck, _, _, err := checkpoint.LoadLatest(filepath.Join(out, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	var led accounting.Ledger
	if err := led.UnmarshalJSON(ck.Blobs["ledger.json"]); err != nil {
		t.Fatal(err)
	}
	var s train.Summary
	readJSON(t, filepath.Join(out, "summary.json"), &s)
	t.Logf("%d SIGKILLs, %d releases for %d steps (%d lost and counted), %d steps seen in metrics", kills, releases, s.Steps, s.LostSteps, observed)
	if led.Len() != releases || int64(releases) != s.Steps+s.LostSteps {
		t.Fatalf("ledger %d events, journal %d releases, summary %d steps + %d lost", led.Len(), releases, s.Steps, s.LostSteps)
	}
	// Independently of the journal: every step whose results reached
	// metrics.jsonl in any attempt is in the ledger.
	if int64(led.Len()) < observed || observed < s.Steps {
		t.Fatalf("ledger %d events, but %d steps were seen in metrics across attempts (%d in the final run)", led.Len(), observed, s.Steps)
	}
	want, err := accounting.Epsilon(accounting.KindPLD, s.Delta, accounting.Schedule{SamplingRate: s.SamplingRate, NoiseMultiplier: s.NoiseMultiplier, Steps: releases})
	if err != nil {
		t.Fatal(err)
	}
	if float64(s.Epsilon) != want {
		t.Fatalf("ε = %g, ε of the %d releases %g", float64(s.Epsilon), releases, want)
	}
}
