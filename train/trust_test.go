package train

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dptrain/accounting"
	"dptrain/checkpoint"
	"dptrain/dpsgd"
	"dptrain/internal/par"
	"dptrain/internal/synthdata"
	"dptrain/nn"
	"dptrain/tensor"
)

// threeRuleBudget is a materialise budget (floats per layer) under which
// cnn-cifar's convolutions take all three per-example norm rules with
// full physical batches of 8: the first two store their per-example
// gradients, the third materialises them, the last three use ghost norms
// (TestThreeRuleModelUsesEveryRule checks it).
const threeRuleBudget = 8 * 9216

// threeRuleConfig is a short seeded run of cnn-cifar on synthetic
// 3×32×32 data whose layers use the stored, materialise and ghost rules.
func threeRuleConfig(t *testing.T) Config {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cifar")
	if err := synthdata.WriteCIFAR10(dir, 240, 40, 1); err != nil {
		t.Fatal(err)
	}
	var c Config
	yml := `
model: cnn-cifar
train_data: cifar10:` + dir + `
test_data: cifar10:` + dir + `
batch_size: 12
physical_batch_size: 8
materialize_budget: 73728
steps: 20
clip_norm: 1
noise_multiplier: 1
optimizer: momentum
learning_rate: 0.05
ema_decay: 0.9
checkpoint_every: 5
noise: seeded
seed: 5
`
	if err := ParseConfig([]byte(yml), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// withThreads sets the kernels' thread count for one test.
func withThreads(t *testing.T, n int) {
	old := par.SetThreads(n)
	t.Cleanup(func() { par.SetThreads(old) })
}

func TestThreeRuleModelUsesEveryRule(t *testing.T) {
	m, err := nn.NewModel(nn.ModelConfig{Name: "cnn-cifar", NumClasses: 10, InputShape: [3]int{3, 32, 32}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.New(8, 3, 32, 32)
	for i := range x.Data {
		x.Data[i] = float32(i%17) / 17
	}
	var loss nn.SoftmaxCrossEntropy
	loss.Forward(m.Forward(x, true), make([]int, 8))
	m.BackwardPerExample(loss.Backward([]float32{1}), nn.PerExampleOptions{Group: 1, MaterializeBudget: threeRuleBudget})
	seen := map[string]int{}
	for _, l := range m.GradLayers() {
		if c, ok := l.(*nn.Conv2d); ok {
			seen[c.NormMethod().String()]++
		}
	}
	for _, rule := range []string{"materialize-stored", "materialize", "ghost"} {
		if seen[rule] == 0 {
			t.Errorf("no convolution took rule %s (rules: %v)", rule, seen)
		}
	}
}

// runOutputs are the parts of a finished run that must repeat bit for bit
// in seeded mode: every tensor of the final checkpoint, the ledger, and
// metrics.jsonl without its timings.
type runOutputs struct {
	tensors map[string][]float32
	ledger  []byte
	metrics []string
}

func readOutputs(t *testing.T, out string) runOutputs {
	t.Helper()
	ck, _, _, err := checkpoint.LoadLatest(filepath.Join(out, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	o := runOutputs{tensors: map[string][]float32{}, ledger: ck.Blobs["ledger.json"]}
	for g, ts := range ck.Tensors {
		for name, v := range ts {
			o.tensors[g+"/"+name] = v.Data
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "seconds")
		delete(m, "examples_per_sec")
		delete(m, "wall_seconds")
		delete(m, "data_wait_seconds")
		j, _ := json.Marshal(m)
		o.metrics = append(o.metrics, string(j))
	}
	return o
}

func sameOutputs(t *testing.T, what string, a, b runOutputs) {
	t.Helper()
	if len(a.tensors) != len(b.tensors) {
		t.Fatalf("%s: %d tensors, want %d", what, len(b.tensors), len(a.tensors))
	}
	for name, va := range a.tensors {
		vb := b.tensors[name]
		if len(va) != len(vb) {
			t.Fatalf("%s: %s has %d values, want %d", what, name, len(vb), len(va))
		}
		for i := range va {
			if math.Float32bits(va[i]) != math.Float32bits(vb[i]) {
				t.Fatalf("%s: %s[%d] = %g, want %g (bit-identical)", what, name, i, vb[i], va[i])
			}
		}
	}
	if !bytes.Equal(a.ledger, b.ledger) {
		t.Fatalf("%s: ledgers differ:\n%s\n%s", what, b.ledger, a.ledger)
	}
	if strings.Join(a.metrics, "\n") != strings.Join(b.metrics, "\n") {
		t.Fatalf("%s: metrics differ:\n%s\nwant\n%s", what, strings.Join(b.metrics, "\n"), strings.Join(a.metrics, "\n"))
	}
}

// TestSeededRunsBitIdentical: with noise: seeded, a 20-step run of a model
// whose layers use all three norm rules gives the same bits — weights,
// optimizer and EMA state, ledger, metrics — on ten repetitions at two
// threads and at one thread.
func TestSeededRunsBitIdentical(t *testing.T) {
	cfg := threeRuleConfig(t)
	cfg.Threads = 2
	withThreads(t, 2)
	run := func() runOutputs {
		out := t.TempDir()
		if _, err := Run(cfg, Options{Out: out}); err != nil {
			t.Fatal(err)
		}
		return readOutputs(t, out)
	}
	ref := run()
	for i := 1; i < 10; i++ {
		sameOutputs(t, "repeat at threads 2", ref, run())
	}
	cfg.Threads = 1
	sameOutputs(t, "threads 1 vs 2", ref, run())
}

// TestResumeBitIdenticalAllRules: a seeded run of the three-rule model at
// two threads, stopped between checkpoints and resumed (the lost steps
// re-run and checked against the journal), ends bit-identical to an
// uninterrupted one.
func TestResumeBitIdenticalAllRules(t *testing.T) {
	cfg := threeRuleConfig(t)
	cfg.Threads = 2
	withThreads(t, 2)
	a := t.TempDir()
	if _, err := Run(cfg, Options{Out: a}); err != nil {
		t.Fatal(err)
	}
	b := t.TempDir()
	for _, stop := range []int{7, 4, 3} { // 7: checkpoint at 5, 2 lost; …
		if _, err := Run(cfg, Options{Out: b, StopAfter: stop}); !errors.Is(err, ErrStopped) {
			t.Fatal(err)
		}
	}
	var log strings.Builder
	if _, err := Run(cfg, Options{Out: b, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "checked bit for bit") {
		t.Errorf("no lost steps were re-run and checked:\n%s", log.String())
	}
	sameOutputs(t, "resumed", readOutputs(t, a), readOutputs(t, b))
}

// TestDefaultNoiseIsSecure: a private config without a noise key trains
// in secure mode, unconditionally stated, and two runs differ.
func TestDefaultNoiseIsSecure(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Noise = ""
	cfg.Steps = 3
	outs := []string{t.TempDir(), t.TempDir()}
	for _, out := range outs {
		s, err := Run(cfg, Options{Out: out})
		if err != nil {
			t.Fatal(err)
		}
		if s.NoiseMode != string(dpsgd.ModeSecure) || s.Config.Noise != string(dpsgd.ModeSecure) || s.EpsilonConditionalOnSecretSeed {
			t.Fatalf("noise mode %q (config %q), conditional %v: want secure", s.NoiseMode, s.Config.Noise, s.EpsilonConditionalOnSecretSeed)
		}
		if s.Guarantee == nil || len(s.Guarantee.Conditions) != 0 || len(s.Guarantee.NotCovered) == 0 {
			t.Fatalf("guarantee %+v: want no conditions and a not-covered list", s.Guarantee)
		}
	}
	wa, _ := finalWeights(t, outs[0])
	wb, _ := finalWeights(t, outs[1])
	differ := false
	for name, a := range wa {
		for i := range a.Data {
			if a.Data[i] != wb[name].Data[i] {
				differ = true
			}
		}
	}
	if !differ {
		t.Fatal("two secure runs of one config gave identical weights: the noise or the batches are not fresh")
	}
	for _, out := range outs {
		st, _ := os.ReadFile(filepath.Join(out, "checkpoints", checkpoint.DirName(3), "state.json"))
		if strings.Contains(string(st), "seed\"") {
			t.Errorf("state.json stores a sampling seed in secure mode:\n%s", st)
		}
	}
}

// TestSeededModeSaysSeedMustStaySecret: every place that states ε in a
// seeded run says that it holds only while the seed is secret.
func TestSeededModeSaysSeedMustStaySecret(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Steps = 2
	out := t.TempDir()
	s, err := Run(cfg, Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if !s.EpsilonConditionalOnSecretSeed || s.Guarantee == nil || len(s.Guarantee.Conditions) != 1 || !strings.Contains(s.Guarantee.Conditions[0], "seed stays secret") {
		t.Fatalf("summary: conditional %v, guarantee %+v", s.EpsilonConditionalOnSecretSeed, s.Guarantee)
	}
	js, _ := os.ReadFile(filepath.Join(out, "summary.json"))
	if !strings.Contains(string(js), `"epsilon_conditional_on_secret_seed": true`) || !strings.Contains(string(js), "seed stays secret") {
		t.Errorf("summary.json lacks the condition:\n%s", js)
	}
	rep, _ := os.ReadFile(filepath.Join(out, "report.md"))
	for _, want := range []string{"It holds only if", "seed stays secret", "summary.json", "privacy-journal.log"} {
		if !strings.Contains(string(rep), want) {
			t.Errorf("report.md lacks %q:\n%s", want, rep)
		}
	}
}

// TestSecureResumeDrawsFreshSamplingKey (review F3): in secure mode every
// process draws its own sampling and augmentation key, so a step re-run
// after a crash uses a fresh batch: lost steps are independent releases
// and Step(q, σ) each is their exact cost.
func TestSecureResumeDrawsFreshSamplingKey(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Noise = string(dpsgd.ModeSecure)
	out := t.TempDir()
	if _, err := Run(cfg, Options{Out: out, StopAfter: 2}); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	keys := map[[32]byte]bool{}
	batches := map[string]bool{}
	for i := 0; i < 3; i++ {
		r := &run{cfg: cfg, opt: Options{Out: out}}
		if err := r.setup(); err != nil {
			t.Fatal(err)
		}
		keys[r.dataKey] = true
		idx := r.sampler.Sample(r.step, nil) // the step the re-run takes first
		batches[fmt.Sprint(idx)] = true
		if ps, ok := r.sampler.(interface{ Describe() string }); !ok || !strings.Contains(ps.Describe(), "poisson") {
			t.Fatalf("sampler %T", r.sampler)
		}
		r.close()
	}
	if len(keys) != 3 {
		t.Fatalf("3 resumes drew %d distinct sampling keys", len(keys))
	}
	if len(batches) < 2 {
		t.Fatalf("3 resumes sampled the same batch for the re-run step: %v", batches)
	}
}

// TestSecureCrashLoopCountsEveryRelease: a secure run that crashes three
// times after its first step ends with a ledger that counts every step
// ever taken (each journaled release), and ε of that ledger.
func TestSecureCrashLoopCountsEveryRelease(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Noise = string(dpsgd.ModeSecure)
	cfg.CheckpointEvery = 100 // only the step-0 and the final checkpoint
	out := t.TempDir()
	for i := 0; i < 3; i++ {
		if _, err := Run(cfg, Options{Out: out, StopAfter: 1}); !errors.Is(err, ErrStopped) {
			t.Fatal(err)
		}
	}
	s, err := Run(cfg, Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	_, evs, err := readJournal(filepath.Join(out, journalName))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 13 || s.LostSteps != 3 {
		t.Fatalf("journal %d releases, %d lost: want 10 steps + 3 lost = 13", len(evs), s.LostSteps)
	}
	want, err := accounting.Epsilon(accounting.KindPLD, s.Delta, accounting.Schedule{SamplingRate: s.SamplingRate, NoiseMultiplier: s.NoiseMultiplier, Steps: 13})
	if err != nil {
		t.Fatal(err)
	}
	if float64(s.Epsilon) != want {
		t.Fatalf("ε = %g, ε of the 13 releases %g", float64(s.Epsilon), want)
	}
}

// TestJournalRemovedOrTruncatedRefusesResume (reliability probe H1): the
// journal is the only record of steps lost after the newest checkpoint; a
// missing, emptied or shortened journal stops the resume.
func TestJournalRemovedOrTruncatedRefusesResume(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Noise = string(dpsgd.ModeSecure)
	for _, tc := range []struct {
		name, want string
		damage     func(path string) error
	}{
		{"deleted", "missing", os.Remove},
		{"emptied", "not a dptrain privacy journal", func(p string) error { return os.WriteFile(p, nil, 0o600) }},
		{"shortened", "truncated or replaced", func(p string) error {
			b, _ := os.ReadFile(p)
			lines := strings.SplitAfter(string(b), "\n")
			return os.WriteFile(p, []byte(strings.Join(lines[:3], "")), 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			if _, err := Run(cfg, Options{Out: out, StopAfter: 5}); !errors.Is(err, ErrStopped) {
				t.Fatal(err)
			}
			if err := tc.damage(filepath.Join(out, journalName)); err != nil {
				t.Fatal(err)
			}
			_, err := Run(cfg, Options{Out: out})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("resume with the journal %s: %v, want an error mentioning %q", tc.name, err, tc.want)
			}
		})
	}
}

// TestFreshStartRefusedOverJournal (review F9): with the checkpoints gone
// but the journal recording releases, a fresh start is refused.
func TestFreshStartRefusedOverJournal(t *testing.T) {
	cfg := smallConfig(t)
	out := t.TempDir()
	if _, err := Run(cfg, Options{Out: out, StopAfter: 2}); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(out, "checkpoints")); err != nil {
		t.Fatal(err)
	}
	_, err := Run(cfg, Options{Out: out})
	if err == nil || !strings.Contains(err.Error(), "no checkpoint of it is left") {
		t.Fatalf("fresh start over a journal of 2 releases: %v", err)
	}
}

// TestOutIsLocked (probe H2): a second run on a --out in use is refused.
func TestOutIsLocked(t *testing.T) {
	cfg := smallConfig(t)
	out := t.TempDir()
	unlock, err := lockOut(out)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(cfg, Options{Out: out})
	if err == nil || !strings.Contains(err.Error(), "another dptrain") || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("run on a locked --out: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, journalName)); err == nil {
		t.Error("the refused run wrote a journal")
	}
	unlock()
	if _, err := Run(cfg, Options{Out: out}); err != nil {
		t.Fatalf("after unlocking: %v", err)
	}
}

// fixManifest recomputes the size and SHA-256 of every file of a
// checkpoint in its manifest, as a deliberate forger would.
func fixManifest(t *testing.T, dir string) {
	t.Helper()
	p := filepath.Join(dir, checkpoint.ManifestName)
	var m map[string]any
	b, _ := os.ReadFile(p)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	files := m["files"].(map[string]any)
	for name := range files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(data)
		files[name] = map[string]any{"sha256": hex.EncodeToString(h[:]), "size": len(data)}
	}
	b, _ = json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestResumeRefusesEditedLedger (probe M1): a ledger whose σ or q was
// edited (manifest recomputed) is refused, not used to lower ε.
func TestResumeRefusesEditedLedger(t *testing.T) {
	for _, tc := range []struct{ name, from, to string }{
		{"sigma", `"noise_multiplier":1.1`, `"noise_multiplier":11`},
		{"rate", `"sampling_rate":0.05`, `"sampling_rate":0.0005`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig(t)
			out := t.TempDir()
			if _, err := Run(cfg, Options{Out: out, StopAfter: 4}); !errors.Is(err, ErrStopped) {
				t.Fatal(err)
			}
			ck := filepath.Join(out, "checkpoints", checkpoint.DirName(3))
			p := filepath.Join(ck, "ledger.json")
			b, _ := os.ReadFile(p)
			if !strings.Contains(string(b), tc.from) {
				t.Fatalf("ledger %s lacks %s", b, tc.from)
			}
			if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), tc.from, tc.to)), 0o644); err != nil {
				t.Fatal(err)
			}
			fixManifest(t, ck)
			_, err := Run(cfg, Options{Out: out})
			if err == nil || !strings.Contains(err.Error(), "ledger entry") {
				t.Fatalf("resume with an edited ledger: %v", err)
			}
		})
	}
}

// TestResumeRefusesChangedData (probe M8): training files replaced in
// place (same path, same size) are noticed on resume.
func TestResumeRefusesChangedData(t *testing.T) {
	cfg := threeRuleConfig(t)
	cfg.Steps = 6
	out := t.TempDir()
	if _, err := Run(cfg, Options{Out: out, StopAfter: 2}); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	f := filepath.Join(strings.TrimPrefix(cfg.TrainData, "cifar10:"), "data_batch_1.bin")
	b, _ := os.ReadFile(f)
	b[3073*7+100] ^= 0x40 // one pixel of example 7
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(cfg, Options{Out: out})
	if err == nil || !strings.Contains(err.Error(), "changed since this run started") {
		t.Fatalf("resume on changed data: %v", err)
	}
}

// TestPlanRefusedBeforeTraining (probe M6, M7): a schedule of no steps or
// one no accountant can evaluate is refused before the first step.
func TestPlanRefusedBeforeTraining(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"epochs NaN", func(c *Config) { c.Steps, c.Epochs = 0, math.NaN() }, "epochs"},
		{"epochs Inf", func(c *Config) { c.Steps, c.Epochs = 0, math.Inf(1) }, "epochs"},
		{"epochs 1e300", func(c *Config) { c.Steps, c.Epochs = 0, 1e300 }, "want 1 to"},
		{"σ 1e-9", func(c *Config) { c.NoiseMultiplier = 1e-9 }, "accountant: rdp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := smallConfig(t)
			tc.edit(&cfg)
			out := t.TempDir()
			_, err := Run(cfg, Options{Out: out})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an error mentioning %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(out, "checkpoints")); err == nil {
				t.Error("a refused run wrote checkpoints")
			}
			if n := strings.Count(err.Error(), "discretization"); n > 1 {
				t.Errorf("the accountant's message is repeated %d times: %v", n, err)
			}
		})
	}
}

// TestLargeDeltaNeedsConsent (review F8): δ ≥ 1/N is an error unless
// allow_large_delta is set, and then the report and summary say so.
func TestLargeDeltaNeedsConsent(t *testing.T) {
	cfg := smallConfig(t) // N = 1200
	cfg.Delta = 1e-3
	cfg.Steps = 2
	if _, err := Run(cfg, Options{Out: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "allow_large_delta") {
		t.Fatalf("δ = 1e-3 with N = 1200: %v", err)
	}
	cfg.AllowLargeDelta = true
	out := t.TempDir()
	s, err := Run(cfg, Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range s.Guarantee.Conditions {
		found = found || strings.Contains(c, "≥ 1/N")
	}
	rep, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !found || !strings.Contains(string(rep), "≥ 1/N") {
		t.Fatalf("conditions %v; report:\n%s", s.Guarantee.Conditions, rep)
	}
}

// TestNonFiniteUpdateNeverApplied: an update that overflows (σ·C beyond
// float32) stops the run before it is applied or checkpointed; the
// release is journaled (it happened) and the last good checkpoint stays.
func TestNonFiniteUpdateNeverApplied(t *testing.T) {
	// checkClipRange refuses such a clip norm up front; lift it to reach
	// the check behind it.
	old := maxClipScale
	maxClipScale = math.Inf(1)
	t.Cleanup(func() { maxClipScale = old })
	cfg := smallConfig(t)
	cfg.ClipNorm = 1e38
	cfg.NoiseMultiplier = 100
	out := t.TempDir()
	_, err := Run(cfg, Options{Out: out})
	if err == nil || !strings.Contains(err.Error(), "not finite") {
		t.Fatalf("overflowing update: %v", err)
	}
	list, err := checkpoint.List(filepath.Join(out, "checkpoints"))
	if err != nil || len(list) != 1 || list[0].Step != 0 {
		t.Fatalf("checkpoints %v (%v): want only step 0", list, err)
	}
	if _, evs, err := readJournal(filepath.Join(out, journalName)); err != nil || len(evs) != 1 {
		t.Fatalf("journal: %d events (%v), want the one release", len(evs), err)
	}
}

// TestSeededReplayMustRepeatTheRelease: a seeded re-run whose release
// differs from the journaled one (here: a forged journal line) stops.
func TestSeededReplayMustRepeatTheRelease(t *testing.T) {
	cfg := smallConfig(t)
	out := t.TempDir()
	if _, err := Run(cfg, Options{Out: out, StopAfter: 5}); !errors.Is(err, ErrStopped) { // checkpoint at 3
		t.Fatal(err)
	}
	p := filepath.Join(out, journalName)
	b, _ := os.ReadFile(p)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var e journalEvent
	if err := json.Unmarshal([]byte(lines[4]), &e); err != nil || e.N != 4 {
		t.Fatalf("journal line 4 %q (%v)", lines[4], err)
	}
	e.Release = "crc32c:00000000"
	nb, _ := json.Marshal(e)
	lines[4] = string(nb)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Run(cfg, Options{Out: out})
	if err == nil || !strings.Contains(err.Error(), "not bit-identical") {
		t.Fatalf("replay against a forged release: %v", err)
	}
}

// TestJournalNeverFollowsASymlink (probe M3): a symlink planted at the
// journal's path is refused, on a fresh start and on resume, and its
// target is never written.
func TestJournalNeverFollowsASymlink(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Steps = 2
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim.txt")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, resume := range []bool{false, true} {
		out := filepath.Join(dir, fmt.Sprint("out", resume))
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		jp := filepath.Join(out, journalName)
		if resume {
			if _, err := Run(cfg, Options{Out: out, StopAfter: 1}); !errors.Is(err, ErrStopped) {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(jp)
			if err := os.WriteFile(victim, b, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Remove(jp)
		}
		before, _ := os.ReadFile(victim)
		if err := os.Symlink(victim, jp); err != nil {
			t.Fatal(err)
		}
		if _, err := Run(cfg, Options{Out: out}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Fatalf("resume %v: run with a symlinked journal: %v", resume, err)
		}
		if after, _ := os.ReadFile(victim); !bytes.Equal(before, after) {
			t.Fatalf("resume %v: the run wrote through the planted symlink", resume)
		}
	}
}

// TestBudgetAfterLostStepsEndsWithCheckpoint: with a target ε, steps lost
// in a crash (secure mode) take budget from the steps still to come; the
// run ends at the last step the budget allows, and that step is
// checkpointed, so the summary describes the model on disk.
func TestBudgetAfterLostStepsEndsWithCheckpoint(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Noise = string(dpsgd.ModeSecure)
	cfg.NoiseMultiplier, cfg.TargetEpsilon = 0, 2
	out := t.TempDir()
	if _, err := Run(cfg, Options{Out: out, StopAfter: 5}); !errors.Is(err, ErrStopped) { // checkpoint at 3: 2 lost
		t.Fatal(err)
	}
	s, err := Run(cfg, Options{Out: out})
	if err != nil {
		t.Fatal(err)
	}
	list, err := checkpoint.List(filepath.Join(out, "checkpoints"))
	if err != nil || len(list) == 0 {
		t.Fatal(list, err)
	}
	if newest := list[len(list)-1].Step; newest != s.Steps || s.LostSteps != 2 {
		t.Fatalf("newest checkpoint at step %d, summary %d steps (%d lost)", newest, s.Steps, s.LostSteps)
	}
	if s.Steps >= 10 || float64(s.Epsilon) > 2 {
		t.Fatalf("%d steps with 2 lost, ε = %g: want fewer than the 10 planned and ε ≤ 2", s.Steps, float64(s.Epsilon))
	}
	want, _ := accounting.Epsilon(accounting.KindPLD, s.Delta, accounting.Schedule{SamplingRate: s.SamplingRate, NoiseMultiplier: s.NoiseMultiplier, Steps: int(s.Steps + s.LostSteps)})
	if float64(s.Epsilon) != want {
		t.Fatalf("ε = %g, accountant for %d+%d steps %g", float64(s.Epsilon), s.Steps, s.LostSteps, want)
	}
}

// TestCrashBeforeFirstCheckpointWithDataNorm: a run killed after its
// data-normalisation release was journaled but before the step-0
// checkpoint starts again: secure mode counts both releases, seeded mode
// checks that the release repeats bit for bit and ends as an uninterrupted
// run does.
func TestCrashBeforeFirstCheckpointWithDataNorm(t *testing.T) {
	for _, noise := range dpsgd.NoiseModes() {
		t.Run(noise, func(t *testing.T) {
			cfg := dataNormConfig(t)
			cfg.Noise = noise
			cfg.Steps = 4
			out := t.TempDir()
			if _, err := Run(cfg, Options{Out: out, StopAfter: 1}); !errors.Is(err, ErrStopped) {
				t.Fatal(err)
			}
			// What a crash between the journal append and the step-0
			// checkpoint leaves: the header and the release, no checkpoint.
			p := filepath.Join(out, journalName)
			b, _ := os.ReadFile(p)
			lines := strings.SplitAfter(string(b), "\n")
			if !strings.Contains(lines[1], `"data_norm"`) {
				t.Fatalf("journal line 1 %q", lines[1])
			}
			if err := os.WriteFile(p, []byte(lines[0]+lines[1]), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(out, "checkpoints")); err != nil {
				t.Fatal(err)
			}
			s, err := Run(cfg, Options{Out: out})
			if err != nil {
				t.Fatal(err)
			}
			led := latestLedger(t, out)
			es := led.Entries()
			releases := map[string]int{string(dpsgd.ModeSeeded): 1, string(dpsgd.ModeSecure): 2}[noise]
			if len(es) != 2 || es[0].Count != releases || es[1].Count != int(s.Steps) {
				t.Fatalf("ledger %v: want the data-norm release %d times, then %d steps", es, releases, s.Steps)
			}
			want, err := led.Epsilon("pld", s.Delta)
			if err != nil || float64(s.Epsilon) != want || float64(s.Epsilon) > cfg.TargetEpsilon {
				t.Fatalf("ε = %g, ledger %g (%v), target %g", float64(s.Epsilon), want, err, cfg.TargetEpsilon)
			}
			if noise == string(dpsgd.ModeSeeded) {
				ref := t.TempDir()
				if _, err := Run(cfg, Options{Out: ref}); err != nil {
					t.Fatal(err)
				}
				sameOutputs(t, "restarted after a crash before the first checkpoint", readOutputs(t, ref), readOutputs(t, out))
			}
		})
	}
}

// TestSecureRangeChecked: a σ so small that a batch's clipped sum could
// leave the secure sampler's exact range (2^22·σ·C) is refused.
func TestSecureRangeChecked(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Noise = string(dpsgd.ModeSecure)
	cfg.NoiseMultiplier = 1e-5 // 2^22·σ ≈ 42 < 1.5·60 + 100
	cfg.Accountant = "rdp"
	if _, err := Run(cfg, Options{Out: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "2^22") {
		t.Fatalf("σ = 1e-5, batch 60, secure: %v", err)
	}
}

// TestSecureKeyNeverWritten: the secure-mode sampling key appears in no
// file of --out and not in the log, in any common encoding.
func TestSecureKeyNeverWritten(t *testing.T) {
	cfg := smallConfig(t)
	cfg.Noise = string(dpsgd.ModeSecure)
	cfg.Steps = 4
	out := t.TempDir()
	var log strings.Builder
	r := &run{cfg: cfg, opt: Options{Out: out, Log: &log}}
	if err := r.setup(); err != nil {
		t.Fatal(err)
	}
	if err := r.loop(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.finish(); err != nil {
		t.Fatal(err)
	}
	r.close()
	key := r.dataKey[:]
	forms := [][]byte{key, []byte(hex.EncodeToString(key)), []byte(strings.ToUpper(hex.EncodeToString(key))),
		[]byte(base64.StdEncoding.EncodeToString(key)), []byte(base64.StdEncoding.EncodeToString(key)[:20])}
	b, _ := json.Marshal(key)
	forms = append(forms, b)
	files := 0
	err := filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, f := range forms {
			if bytes.Contains(data, f) {
				t.Errorf("%s contains the sampling key (%.12q…)", p, f)
			}
		}
		return nil
	})
	if err != nil || files < 8 {
		t.Fatalf("walked %d files: %v", files, err)
	}
	for _, f := range forms {
		if strings.Contains(log.String(), string(f)) {
			t.Errorf("the log contains the sampling key")
		}
	}
}
