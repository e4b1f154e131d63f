package train

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"dptrain/checkpoint"
	"dptrain/data"
	"dptrain/dist"
	"dptrain/internal/synthdata"
)

// runRanks runs cfg data-parallel on size in-process ranks (dist.Local),
// rank 0 writing out, and returns every rank's summary and error.
func runRanks(cfg Config, out string, size, stopAfter int) ([]*Summary, []error) {
	comms := dist.Local(size)
	sums := make([]*Summary, size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			sums[i], errs[i] = Run(cfg, Options{Out: out, Comm: c, StopAfter: stopAfter})
			if err := errs[i]; err != nil && !errors.Is(err, ErrCollective) && !errors.Is(err, ErrStopped) {
				c.Abort(1) // as cmd does: the other ranks must not wait for this one
			}
		}()
	}
	wg.Wait()
	return sums, errs
}

func mustRunRanks(t *testing.T, cfg Config, out string, size int) *Summary {
	t.Helper()
	sums, errs := runRanks(cfg, out, size, 0)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rank %d of %d: %v", i, size, err)
		}
	}
	for i, s := range sums[1:] {
		if s.Steps != sums[0].Steps {
			t.Fatalf("rank %d: %d steps; rank 0: %d steps", i+1, s.Steps, sums[0].Steps)
		}
	}
	return sums[0]
}

// ranksConfig is smallConfig for 50 steps (the comparison length)
// at a learning rate where training is not chaotic: at 0.5 (smallConfig's)
// a difference in the last bit of one step's sum (summation order) can
// flip a max-pool's choice and grow to 2% of a weight by step 50.
func ranksConfig(t *testing.T) Config {
	c := smallConfig(t)
	c.Steps, c.CheckpointEvery = 50, 20
	c.MaxTrainExamples = 600
	c.LearningRate, c.AugMultiplicity = 0.1, 1
	return c
}

// maxWeightDiff is max |a−b| over every weight, relative to max |a|.
func maxWeightDiff(t *testing.T, a, b map[string]checkpoint.Tensor) float64 {
	t.Helper()
	var d, m float64
	for name, ta := range a {
		tb, ok := b[name]
		if !ok || len(tb.Data) != len(ta.Data) {
			t.Fatalf("weights %s: missing or of another size", name)
		}
		for i, v := range ta.Data {
			d = max(d, math.Abs(float64(v)-float64(tb.Data[i])))
			m = max(m, math.Abs(float64(v)))
		}
	}
	return d / m
}

func sameWeights(a, b map[string]checkpoint.Tensor) error {
	for name, ta := range a {
		for i, v := range ta.Data {
			if math.Float32bits(v) != math.Float32bits(b[name].Data[i]) {
				return fmt.Errorf("%s[%d]: %g vs %g", name, i, v, b[name].Data[i])
			}
		}
	}
	return nil
}

// TestRanksMatchOneProcess: 2 and 3 ranks train the model one process
// trains (the same Poisson samples, noise and updates; the clipped sums
// differ only in float32 summation order), with the same ledger and ε;
// two 2-rank runs are bit-identical; only rank 0 writes --out.
func TestRanksMatchOneProcess(t *testing.T) {
	cfg := ranksConfig(t)
	one := t.TempDir()
	if _, err := Run(cfg, Options{Out: one}); err != nil {
		t.Fatal(err)
	}
	w1, s1 := finalWeights(t, one)
	led1, err := latestLedger(t, one).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	// One step: the sums differ in summation order only (float32 rounding).
	first := cfg
	first.Steps = 1
	oneStep := t.TempDir()
	if _, err := Run(first, Options{Out: oneStep}); err != nil {
		t.Fatal(err)
	}
	wStep, _ := finalWeights(t, oneStep)
	out := t.TempDir()
	mustRunRanks(t, first, out, 2)
	if w, _ := finalWeights(t, out); maxWeightDiff(t, wStep, w) > 1e-6 {
		t.Fatalf("2 ranks, one step: weights %.3g (relative max) from one process's", maxWeightDiff(t, wStep, w))
	}

	var w2 map[string]checkpoint.Tensor
	for _, size := range []int{2, 2} { // 3 ranks: TestRanksResumeWithOtherRankCount
		out := t.TempDir()
		s := mustRunRanks(t, cfg, out, size)
		w, sf := finalWeights(t, out)
		if s.Steps != s1.Steps || float64(sf.Epsilon) != float64(s1.Epsilon) || float64(s.Epsilon) != float64(s1.Epsilon) {
			t.Fatalf("%d ranks: %d steps, ε=%g; one process: %d steps, ε=%g", size, s.Steps, float64(s.Epsilon), s1.Steps, float64(s1.Epsilon))
		}
		led, err := latestLedger(t, out).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if string(led) != string(led1) {
			t.Fatalf("%d ranks: ledger %s, one process %s", size, led, led1)
		}
		if d := maxWeightDiff(t, w1, w); d > 1e-3 {
			t.Fatalf("%d ranks: weights differ from one process's by %.3g (relative max): more than summation order", size, d)
		} else {
			t.Logf("%d ranks: weights within %.3g (relative max) of one process's after %d steps", size, d, s.Steps)
		}
		if size == 2 {
			if w2 == nil {
				w2 = w
			} else if err := sameWeights(w2, w); err != nil {
				t.Fatalf("two 2-rank runs differ: %v", err)
			}
		}
		m, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(m), `"type":"step"`); n != int(s1.Steps) {
			t.Fatalf("%d ranks: metrics.jsonl has %d step lines, want %d (rank 0 alone writes)", size, n, s1.Steps)
		}
	}
}

// TestRanksResumeWithOtherRankCount: a 2-rank job stopped at a checkpoint
// resumes on 3 ranks, then in one process, and ends where an uninterrupted
// run ends (up to summation order), with the same ε. A seeded job stopped
// between checkpoints must re-release the lost steps bit-identically,
// which another rank count cannot (summation order): it is refused with
// the reason, and resuming on the same rank count works.
func TestRanksResumeWithOtherRankCount(t *testing.T) {
	cfg := ranksConfig(t)
	cfg.Steps, cfg.CheckpointEvery = 12, 5
	one := t.TempDir()
	if _, err := Run(cfg, Options{Out: one}); err != nil {
		t.Fatal(err)
	}
	w1, s1 := finalWeights(t, one)
	out := t.TempDir()
	for _, leg := range []struct{ ranks, stop int }{{2, 5}, {3, 5}} { // checkpoints at 5 and 10
		_, errs := runRanks(cfg, out, leg.ranks, leg.stop)
		for i, err := range errs {
			if !errors.Is(err, ErrStopped) {
				t.Fatalf("%d ranks: rank %d: %v, want ErrStopped", leg.ranks, i, err)
			}
		}
	}
	if _, err := Run(cfg, Options{Out: out}); err != nil {
		t.Fatalf("resumed in one process: %v", err)
	}
	w, s := finalWeights(t, out)
	if s.Steps != s1.Steps || float64(s.Epsilon) != float64(s1.Epsilon) {
		t.Fatalf("resumed: %d steps, ε=%g; uninterrupted %d steps, ε=%g", s.Steps, float64(s.Epsilon), s1.Steps, float64(s1.Epsilon))
	}
	if d := maxWeightDiff(t, w1, w); d > 1e-4 {
		t.Fatalf("resumed over 2, 3 and 1 ranks: weights %.3g (relative max) from the uninterrupted run's", d)
	}

	// Stopped between checkpoints: steps 6 and 7 were released by 2 ranks.
	out = t.TempDir()
	if _, errs := runRanks(cfg, out, 2, 7); !errors.Is(errs[0], ErrStopped) {
		t.Fatalf("2 ranks: %v", errs[0])
	}
	if _, errs := runRanks(cfg, out, 3, 0); errs[0] == nil || !strings.Contains(errs[0].Error(), "not bit-identical") {
		t.Fatalf("seeded re-run of lost steps on 3 ranks: %v, want the not-bit-identical refusal", errs[0])
	}
	if _, errs := runRanks(cfg, out, 2, 0); errs[0] != nil || errs[1] != nil {
		t.Fatalf("resumed on 2 ranks: %v, %v", errs[0], errs[1])
	}
	if _, s := finalWeights(t, out); s.Steps != s1.Steps || float64(s.Epsilon) != float64(s1.Epsilon) {
		t.Fatalf("resumed on 2 ranks: %d steps, ε=%g; want %d, %g", s.Steps, float64(s.Epsilon), s1.Steps, float64(s1.Epsilon))
	}
}

// TestRanksSecureMode: with the default secure randomness, rank 0's
// secret sampling key reaches every rank (their samples are parts of one)
// and the run spends exactly the planned ε.
func TestRanksSecureMode(t *testing.T) {
	cfg := ranksConfig(t)
	cfg.Steps, cfg.Noise = 6, "secure"
	one := t.TempDir()
	if _, err := Run(cfg, Options{Out: one}); err != nil {
		t.Fatal(err)
	}
	_, s1 := finalWeights(t, one)
	s := mustRunRanks(t, cfg, t.TempDir(), 2)
	if s.Steps != 6 || float64(s.Epsilon) != float64(s1.Epsilon) || s.NoiseMode != "secure" {
		t.Fatalf("2 ranks secure: %d steps, ε=%g, noise %q; one process ε=%g", s.Steps, float64(s.Epsilon), s.NoiseMode, float64(s1.Epsilon))
	}
}

// TestRanksDetectDivergedWeights: a rank whose weights differ after a step
// (here: perturbed by a test hook) stops every rank with an error naming
// it, before the next step; nothing of that step is checkpointed.
func TestRanksDetectDivergedWeights(t *testing.T) {
	cfg := ranksConfig(t)
	cfg.Steps = 6
	afterUpdateHook = func(r *run) {
		if r.rank() == 1 && r.step == 3 {
			r.model.train.params[0][0] += 1e-3
		}
	}
	defer func() { afterUpdateHook = nil }()
	_, errs := runRanks(cfg, t.TempDir(), 2, 0)
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "after step 3") || !strings.Contains(err.Error(), "rank 1") {
			t.Fatalf("rank %d: %v, want an error naming rank 1 after step 3", i, err)
		}
		if !errors.Is(err, ErrCollective) {
			t.Fatalf("rank %d: %v is not marked collective", i, err)
		}
	}
}

// TestRanksPreparedData: on a prepared (memory-mapped) training set, rank 1
// opens only its block's shards, and 2 ranks train the one-process model.
func TestRanksPreparedData(t *testing.T) {
	dir := t.TempDir()
	if err := synthdata.WriteCIFAR10(filepath.Join(dir, "cifar"), 240, 40, 3); err != nil {
		t.Fatal(err)
	}
	prep := filepath.Join(dir, "prep")
	if _, err := data.Prepare(data.PrepareOptions{Src: "cifar10:" + filepath.Join(dir, "cifar"), Split: "train", Out: prep, ShardBytes: 40 * (4 + 3*32*32)}); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	yml := `model: cnn-cifar
train_data: prepared:` + prep + `
batch_size: 24
physical_batch_size: 8
steps: 8
clip_norm: 1
noise_multiplier: 1.2
learning_rate: 0.05
optimizer: momentum
checkpoint_every: 4
noise: seeded
seed: 5
`
	if err := ParseConfig([]byte(yml), &cfg); err != nil {
		t.Fatal(err)
	}
	one := t.TempDir()
	if _, err := Run(cfg, Options{Out: one}); err != nil {
		t.Fatal(err)
	}
	w1, s1 := finalWeights(t, one)
	out := t.TempDir()
	s := mustRunRanks(t, cfg, out, 2)
	w, _ := finalWeights(t, out)
	if s.Steps != s1.Steps || float64(s.Epsilon) != float64(s1.Epsilon) {
		t.Fatalf("2 ranks: %d steps ε=%g; one process %d steps ε=%g", s.Steps, float64(s.Epsilon), s1.Steps, float64(s1.Epsilon))
	}
	// Summation order only, amplified by 8 momentum steps: the bound of
	// TestRanksMatchOneProcess's multi-step runs (1e-5 here failed on an
	// Intel machine at 1.7e-5 with OpenBLAS's SkylakeX kernels, 7.5e-5 with
	// oneDNN's; the one-step comparison there stays at 1e-6).
	if d := maxWeightDiff(t, w1, w); d > 1e-3 {
		t.Fatalf("2 ranks on prepared data: weights %.3g (relative max) from one process's: more than summation order", d)
	}
	// What rank 1 opens: the shards of its block, and nothing else readable.
	comms := dist.Local(2)
	defer comms[0].Close()
	defer comms[1].Close()
	r := &run{cfg: cfg, opt: Options{Comm: comms[1]}}
	part := r.dataPart()
	if part == nil {
		t.Fatal("rank 1 of 2 opens the whole training set")
	}
	if lo, hi := part(240); lo != 120 || hi != 240 {
		t.Fatalf("rank 1's block [%d, %d), want [120, 240)", lo, hi)
	}
}
