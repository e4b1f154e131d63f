package train

// Regression tests for the reliability probe of commit 5adac92
// (../shared/reviews/reliability-probe.md): careless and hostile input
// gives a clear error before anything is spent, never a panic, a runaway
// allocation, a write through a planted link or a silent change of what
// was asked. Each test names the defect it covers.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"dptrain/checkpoint"
	"dptrain/data"
	"dptrain/internal/synthdata"
)

// validConfigYAML is a complete private config whose data need not exist
// (validate does not open it).
const validConfigYAML = "model: cnn-mnist\ntrain_data: mnist:/x\nbatch_size: 10\nepochs: 1\nclip_norm: 1\nlearning_rate: 0.1\nnoise_multiplier: 1\n"

// TestConfigRejectsCarelessValues covers L3 (YAML quirks) and L4
// (negative or meaningless values), and the size bounds of M5.
func TestConfigRejectsCarelessValues(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"L3 fractional int", "batch_size: 50.5\n", "batch_size: 50.5 is not an integer"},
		{"L3 fractional int in a list", "lr_milestones: [5, 7.5]\n", "lr_milestones: 7.5 is not an integer"},
		{"L3 second document", "steps: 0\n---\nnoise_multiplier: 5\n", "second YAML document"},
		{"L4 max_train_examples", "max_train_examples: -5\n", "max_train_examples: -5"},
		{"L4 max_test_examples", "max_test_examples: -1\n", "max_test_examples: -1"},
		{"L4 checkpoint_every", "checkpoint_every: -1\n", "checkpoint_every: -1"},
		{"L4 keep_checkpoints", "keep_checkpoints: -1\n", "keep_checkpoints: -1"},
		{"L4 eval_every", "eval_every: -1\n", "eval_every: -1"},
		{"L4 log_every", "log_every: -1\n", "log_every: -1"},
		{"L4 threads negative", "threads: -1\n", "threads: -1"},
		{"L4 threads huge", "threads: 100000\n", "threads: 100000"},
		{"L4 warmup_steps", "warmup_steps: -5\n", "warmup_steps: -5"},
		{"M5 image_size", "image_size: 100000\n", "image_size: 100000, want 0 (as stored) or 1 to 4096"},
		{"M5 crop_size", "crop: center\ncrop_size: 10000\n", "crop_size: 10000"},
		{"M5 aug_multiplicity", "aug_multiplicity: 100000\n", "aug_multiplicity: 100000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			if err := ParseConfig([]byte(validConfigYAML), &c); err != nil {
				t.Fatal(err)
			}
			err := ParseConfig([]byte(tc.yaml), &c)
			if err == nil {
				err = c.validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigYAMLDetails(t *testing.T) {
	var c Config
	// Integral numbers in float syntax are integers.
	if err := ParseConfig([]byte("steps: 5e3\nbatch_size: 64.0\n"), &c); err != nil || c.Steps != 5000 || c.BatchSize != 64 {
		t.Fatalf("steps: 5e3, batch_size: 64.0 gave %d, %d, %v", c.Steps, c.BatchSize, err)
	}
	// L3: a line break in a flag value cannot set another key.
	c = Config{}
	err := c.ApplyOverride("steps", "5\nbatch_size: 7")
	if err == nil || !strings.Contains(err.Error(), "line break") || c.BatchSize != 0 {
		t.Fatalf("override with a newline: %v (batch_size %d)", err, c.BatchSize)
	}
	// L8: the list of known keys is shown for an unknown key, not for a
	// file that is not YAML at all.
	err = ParseConfig([]byte("stepz: 5\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "known keys") {
		t.Fatalf("unknown key: %v", err)
	}
	err = ParseConfig([]byte("\x00\x01\x02 binary"), &c)
	if err == nil || strings.Contains(err.Error(), "known keys") {
		t.Fatalf("binary input: %v (want an error without the key list)", err)
	}
}

// writeIDX writes n examples of ds as idx files with labels mapped by lab.
func writeIDX(t *testing.T, dir string, ds data.Dataset, n int, lab func(int) int) string {
	t.Helper()
	c, h, w := ds.Shape()
	if c != 1 {
		t.Fatalf("writeIDX: %d channels", c)
	}
	imgs := make([][]uint8, n)
	for i := range imgs {
		imgs[i] = make([]uint8, h*w)
		if err := ds.Image(i, imgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	spec, err := synthdata.WriteIDX(dir, n, h, w,
		func(i, y, x int) byte { return imgs[i][y*w+x] },
		func(i int) byte { return byte(lab(ds.Label(i))) })
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// fiveClassMNIST is an idx copy of the first 600 MNIST training examples
// with labels mod 5 (a 5-class training set).
func fiveClassMNIST(t *testing.T) string {
	ds, err := data.Open(mnistSpec(t), "train", data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return writeIDX(t, t.TempDir(), ds, 600, func(l int) int { return l % 5 })
}

// tinyConfig is a seeded private cnn-mnist run of a few steps.
func tinyConfig(t *testing.T) Config {
	c := smallConfig(t)
	c.Steps, c.CheckpointEvery, c.AugMultiplicity, c.EMADecay = 6, 2, 1, 0
	c.Crop, c.CropPadding = "", 0
	return c
}

// TestTestLabelsBeyondTrainingClassesRefusedBeforeTraining covers H3: the
// refusal comes before the first step, not as a panic after the budget is
// spent.
func TestTestLabelsBeyondTrainingClassesRefusedBeforeTraining(t *testing.T) {
	c := tinyConfig(t)
	c.TrainData = fiveClassMNIST(t)
	out := t.TempDir()
	_, err := Run(c, Options{Out: out})
	if err == nil || !strings.Contains(err.Error(), "test_data") || !strings.Contains(err.Error(), "expected 0 to 4") {
		t.Fatalf("got %v, want a test_data label error", err)
	}
	if _, err := os.Stat(filepath.Join(out, "checkpoints")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checkpoints written before the refusal (%v): nothing should have been spent", err)
	}
}

// TestEvalChecksShapeAndClasses covers M2 (a shape the model does not take
// is an error, not a panic), L13 (a leading subset of the classes is
// accepted) and L8 (a missing checkpoint path says so).
func TestEvalChecksShapeAndClasses(t *testing.T) {
	c := tinyConfig(t)
	c.TestData = ""
	out := t.TempDir()
	if _, err := Run(c, Options{Out: out}); err != nil {
		t.Fatal(err)
	}
	test, err := data.Open(mnistSpec(t), "test", data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// 32×32 images of the model's 10 classes.
	big := filepath.Join(dir, "big")
	os.Mkdir(big, 0o755)
	writeIDX(t, big, test, 200, func(l int) int { return l })
	resized := "idx:" + filepath.Join(big, "img32.idx") + "," + filepath.Join(big, "lab.idx")
	b, _ := os.ReadFile(filepath.Join(big, "img.idx"))
	n := int(binary.BigEndian.Uint32(b[4:]))
	out32 := make([]byte, 16, 16+n*32*32)
	copy(out32, b[:16])
	binary.BigEndian.PutUint32(out32[8:], 32)
	binary.BigEndian.PutUint32(out32[12:], 32)
	for i := range n {
		img := b[16+i*784 : 16+(i+1)*784]
		for y := range 32 {
			for x := range 32 {
				v := byte(0)
				if y >= 2 && y < 30 && x >= 2 && x < 30 {
					v = img[(y-2)*28+x-2]
				}
				out32 = append(out32, v)
			}
		}
	}
	os.WriteFile(filepath.Join(big, "img32.idx"), out32, 0o644)
	if _, err := EvalCheckpoint(EvalOptions{Checkpoint: out, Data: resized, Split: "test"}); err == nil || !strings.Contains(err.Error(), "the model takes 1×28×28") {
		t.Errorf("eval on 32×32 data: %v, want a shape error", err)
	}
	// Only labels 0…4 (the first five of the model's ten classes).
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	var keep []int
	for i := range test.Len() {
		if test.Label(i) < 5 && len(keep) < 100 {
			keep = append(keep, i)
		}
	}
	subSpec := writeIDX(t, sub, indexed{test, keep}, len(keep), func(l int) int { return l })
	res, err := EvalCheckpoint(EvalOptions{Checkpoint: out, Data: subSpec, Split: "test"})
	if err != nil || res.Examples != len(keep) {
		t.Errorf("eval on labels 0…4 of a 10-class model: %v (%+v)", err, res)
	}
	if _, err := EvalCheckpoint(EvalOptions{Checkpoint: filepath.Join(dir, "nonexistent"), Data: subSpec, Split: "test"}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing checkpoint: %v", err)
	}
}

// indexed is the examples idx of a dataset, in that order.
type indexed struct {
	data.Dataset
	idx []int
}

func (d indexed) Len() int                     { return len(d.idx) }
func (d indexed) Label(i int) int              { return d.Dataset.Label(d.idx[i]) }
func (d indexed) Image(i int, p []uint8) error { return d.Dataset.Image(d.idx[i], p) }

// TestNoWriteThroughPlantedLinks covers M3: links planted at the names the
// run writes, in a folder holding a run, never redirect a write.
func TestNoWriteThroughPlantedLinks(t *testing.T) {
	c := tinyConfig(t)
	out := t.TempDir()
	if _, err := Run(c, Options{Out: out, StopAfter: 2}); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim.txt")
	os.WriteFile(victim, []byte("precious\n"), 0o644)
	for _, name := range []string{"summary.json.tmp", "report.md.tmp", "metrics.jsonl.tmp", "summary.json", "report.md", "loss.png"} {
		os.Remove(filepath.Join(out, name))
		if err := os.Symlink(victim, filepath.Join(out, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Run(c, Options{Out: out}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("the victim file was overwritten through a planted link (%d bytes)", len(b))
	}
	// A link at metrics.jsonl itself is refused, not followed.
	out2 := t.TempDir()
	if _, err := Run(c, Options{Out: out2, StopAfter: 2}); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(out2, "metrics.jsonl"))
	os.Symlink(victim, filepath.Join(out2, "metrics.jsonl"))
	if _, err := Run(c, Options{Out: out2}); err == nil {
		t.Fatal("resume through a metrics.jsonl link succeeded")
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("the victim file was overwritten through metrics.jsonl (%d bytes)", len(b))
	}
}

// TestMetricsWriteErrorIsReturned covers L1: a full disk is an error,
// not a silently truncated metrics file.
func TestMetricsWriteErrorIsReturned(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	m := &metricsWriter{f: f, w: bufio.NewWriter(f)}
	defer m.Close()
	err = m.write(map[string]any{"type": "step", "step": 1})
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("write to a full device: %v", err)
	}
	r := &run{step: 7, out: outputs{ckptDir: "/x/checkpoints"}}
	if msg := r.stopOnWriteError(err).Error(); !strings.Contains(msg, "stopping at step 7") || !strings.Contains(msg, "rerun the same command") {
		t.Fatalf("message %q", msg)
	}
}

// TestOutWithOtherFilesRefused covers L2.
func TestOutWithOtherFilesRefused(t *testing.T) {
	c := tinyConfig(t)
	out := t.TempDir()
	os.WriteFile(filepath.Join(out, "report.md"), []byte("my notes\n"), 0o644)
	_, err := Run(c, Options{Out: out})
	if err == nil || !strings.Contains(err.Error(), "already holds files (report.md)") {
		t.Fatalf("got %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "report.md")); string(b) != "my notes\n" {
		t.Fatal("report.md overwritten")
	}
}

// stopWriter closes stop when the log shows step `at`.
type stopWriter struct {
	mu   sync.Mutex
	at   string
	stop chan struct{}
	done bool
}

func (w *stopWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done && strings.Contains(string(p), w.at) {
		close(w.stop)
		w.done = true
	}
	return len(p), nil
}

// TestInterruptCheckpointsAndResumes covers L10: a stop request (Ctrl-C)
// ends the run after the current step with a checkpoint of it; the rerun
// resumes there and ends bit-identical to an uninterrupted run.
func TestInterruptCheckpointsAndResumes(t *testing.T) {
	c := tinyConfig(t)
	c.CheckpointEvery, c.LogEvery = 100, 1
	ref := t.TempDir()
	if _, err := Run(c, Options{Out: ref}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	w := &stopWriter{at: "step 3/", stop: make(chan struct{})}
	_, err := Run(c, Options{Out: out, Log: w, Stop: w.stop})
	var ie *InterruptedError
	if !errors.As(err, &ie) || ie.Step != 3 || !strings.Contains(err.Error(), "rerun the same command") {
		t.Fatalf("got %v, want an interruption at step 3", err)
	}
	es, _ := checkpoint.List(filepath.Join(out, "checkpoints"))
	if len(es) == 0 || es[len(es)-1].Step != 3 {
		t.Fatalf("checkpoints %v, want the newest at step 3", es)
	}
	if _, err := Run(c, Options{Out: out}); err != nil {
		t.Fatal(err)
	}
	sameOutputs(t, "interrupted and resumed", readOutputs(t, ref), readOutputs(t, out))
}

// TestUnusableNewestCheckpointFallsBack covers L11: a checkpoint that
// passes its checksums but cannot be used (NaN weights here) is skipped
// for the previous one, and the result is that of an uninterrupted run.
func TestUnusableNewestCheckpointFallsBack(t *testing.T) {
	c := tinyConfig(t)
	ref := t.TempDir()
	if _, err := Run(c, Options{Out: ref}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := Run(c, Options{Out: out, StopAfter: 5}); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	es, _ := checkpoint.List(filepath.Join(out, "checkpoints"))
	newest := es[len(es)-1].Path
	wp := filepath.Join(newest, "weights.safetensors")
	ts, meta, err := checkpoint.ReadSafetensors(wp)
	if err != nil {
		t.Fatal(err)
	}
	for name, tt := range ts {
		d := append([]float32(nil), tt.Data...)
		d[0] = float32(math.NaN())
		ts[name] = checkpoint.Tensor{Shape: tt.Shape, Data: d}
		break
	}
	if err := checkpoint.WriteSafetensors(wp, ts, meta); err != nil {
		t.Fatal(err)
	}
	fixManifest(t, newest)
	var log strings.Builder
	if _, err := Run(c, Options{Out: out, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "unusable") || !strings.Contains(log.String(), "NaN") {
		t.Errorf("no warning about the unusable checkpoint in:\n%s", log.String())
	}
	sameOutputs(t, "after falling back past an unusable checkpoint", readOutputs(t, ref), readOutputs(t, out))
}

// TestRefusalNamesChangedKeys covers L8: the fingerprint refusal says
// which key changed, and a trailing slash in a path is no change.
func TestRefusalNamesChangedKeys(t *testing.T) {
	c := tinyConfig(t)
	out := t.TempDir()
	if _, err := Run(c, Options{Out: out, StopAfter: 1}); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	c2 := c
	c2.LearningRate = 0.1
	_, err := Run(c2, Options{Out: out, StopAfter: 1})
	if err == nil || !strings.Contains(err.Error(), "learning_rate: 0.5 → 0.1") {
		t.Fatalf("got %v, want the changed key named", err)
	}
	c3 := c
	c3.TrainData += "/"
	if _, err := Run(c3, Options{Out: out, StopAfter: 1}); !errors.Is(err, ErrStopped) {
		t.Fatalf("train_data with a trailing slash: %v, want a resume", err)
	}
}

// TestHopelessSettingsRefusedBeforeAllocating covers M5 and L8: a crop
// larger than the image, a model or an augmentation multiplicity that
// cannot fit, and a clip norm whose sums overflow float32 are refused
// before the model is built or a step is taken, saying what would fit.
func TestHopelessSettingsRefusedBeforeAllocating(t *testing.T) {
	old := memAvailable
	t.Cleanup(func() { memAvailable = old })
	memAvailable = func() uint64 { return 1 << 30 } // a 1 GiB machine
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"M5 centre crop larger than the image", func(c *Config) { c.Crop, c.CropSize = "center", 4000 }, []string{"centre crop 4000×4000 larger than the input 28×28"}},
		{"M5 model too large", func(c *Config) { c.Crop, c.CropSize = "random-resized", 4096 }, []string{"parameters: with gradients and optimizer state they need about"}},
		{"M5 augmentations", func(c *Config) { c.AugMultiplicity = 256; c.PhysicalBatchSize = 60 }, []string{"256", "needs about", "GiB are available: use"}},
		{"L8 clip norm overflow", func(c *Config) { c.ClipNorm = 1e308 }, []string{"clip_norm: 1e+308 is too large"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tinyConfig(t)
			tc.edit(&c)
			out := t.TempDir()
			if tc.name == "M5 augmentations" {
				memAvailable = func() uint64 { return 64 << 20 }
				defer func() { memAvailable = func() uint64 { return 1 << 30 } }()
			}
			_, err := Run(c, Options{Out: out})
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("got %v, want %q", err, w)
				}
			}
		})
	}
}

// TestInitWithNonFiniteWeightsRefused covers L8: NaN starting weights are
// named as such, not reported later as a diverging learning rate.
func TestInitWithNonFiniteWeightsRefused(t *testing.T) {
	c := tinyConfig(t)
	out := t.TempDir()
	if _, err := Run(c, Options{Out: out}); err != nil {
		t.Fatal(err)
	}
	ck, _, _, err := checkpoint.LoadLatest(filepath.Join(out, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	ts := ck.Tensors["weights"]
	for name, tt := range ts {
		d := append([]float32(nil), tt.Data...)
		d[len(d)-1] = float32(math.Inf(1))
		ts[name] = checkpoint.Tensor{Shape: tt.Shape, Data: d}
	}
	init := filepath.Join(t.TempDir(), "w.safetensors")
	if err := checkpoint.WriteSafetensors(init, ts, nil); err != nil {
		t.Fatal(err)
	}
	c.Init = init
	_, err = Run(c, Options{Out: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "NaN or Inf") {
		t.Fatalf("got %v", err)
	}
}
