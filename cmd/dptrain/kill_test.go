package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"dptrain/checkpoint"
	"dptrain/internal/mnistdata"
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

func killConfig(t *testing.T, dir string) string {
	d, err := mnistdata.Dir()
	if err != nil {
		t.Fatal(err)
	}
	cfg := `model: cnn-mnist
train_data: mnist:` + d + `
test_data: mnist:` + d + `
max_train_examples: 900
max_test_examples: 200
batch_size: 30
steps: 60
clip_norm: 1
noise_multiplier: 1.2
learning_rate: 0.3
optimizer: momentum
ema_decay: 0.9
checkpoint_every: 2
keep_checkpoints: 2
seed: 3
`
	p := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSIGKILLResume kills `dptrain train` with SIGKILL at random moments and
// re-runs the same command until it finishes: the final weights and ε equal
// those of an uninterrupted run.
func TestSIGKILLResume(t *testing.T) {
	dir := t.TempDir()
	cfgPath := killConfig(t, dir)
	ref := filepath.Join(dir, "ref")
	var stdout, stderr bytes.Buffer
	t0 := time.Now()
	if err := runTrain([]string{"--config", cfgPath, "--out", ref}, &stdout, &stderr); err != nil {
		t.Fatalf("reference run: %v\n%s", err, stderr.String())
	}
	// Kill at random moments spread over about one run's duration (startup
	// included), so kills land before, between and during checkpoint writes.
	span := time.Since(t0) + 300*time.Millisecond
	out := filepath.Join(dir, "killed")
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills, done := 0, false
	for attempt := 0; attempt < 40 && !done; attempt++ {
		cmd := exec.Command(os.Args[0], "train", "--config", cfgPath, "--out", out)
		cmd.Env = append(os.Environ(), "DPTRAIN_TEST_MAIN=1")
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("run %d failed: %v\n%s", attempt, err, errb.String())
			}
			done = true
		case <-time.After(span*15/100 + time.Duration(r.Int64N(int64(span)*6/10))):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			kills++
			// Whatever the kill interrupted, the newest valid checkpoint is
			// complete and its ledger covers exactly its steps (checked on
			// resume by the next run).
		}
	}
	if !done {
		t.Fatalf("run did not finish after %d kills", kills)
	}
	t.Logf("finished after %d SIGKILLs", kills)
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
	for name, w := range want.Tensors["weights"] {
		g := got.Tensors["weights"][name]
		for i := range w.Data {
			if w.Data[i] != g.Data[i] {
				t.Fatalf("%s[%d] = %g after kills, %g uninterrupted", name, i, g.Data[i], w.Data[i])
			}
		}
	}
	if !bytes.Equal(got.Blobs["ledger.json"], want.Blobs["ledger.json"]) {
		t.Fatalf("ledgers differ:\n%s\n%s", got.Blobs["ledger.json"], want.Blobs["ledger.json"])
	}
	var a, b train.Summary
	readJSON(t, filepath.Join(ref, "summary.json"), &a)
	readJSON(t, filepath.Join(out, "summary.json"), &b)
	if a.Epsilon != b.Epsilon || a.TestAccuracy != b.TestAccuracy {
		t.Fatalf("ε %g acc %g after kills; uninterrupted ε %g acc %g", b.Epsilon, b.TestAccuracy, a.Epsilon, a.TestAccuracy)
	}
}
