package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"dptrain/internal/mnistdata"
	"dptrain/internal/synthdata"
)

// probeInputs builds the hostile and careless inputs of the reliability
// probe (../shared/reviews/reliability-probe.md) in dir.
type probeInputs struct {
	mnist     string // mnist:DIR
	idx5      string // idx spec, 5 classes (labels mod 5)
	idx32     string // idx spec, 32×32 images, 10 classes
	idxStray  string // idx spec with one label 200
	traversal string // tar with ../ and absolute members
	zeroDir   string // ImageFolder directory with a link to /dev/zero
	fifoDir   string // ImageFolder directory with a FIFO
	run       string // a finished cnn-mnist run (28×28, 10 classes)
}

func writeIDXFiles(t *testing.T, dir string, n, h, w int, pix func(i, y, x int) byte, label func(i int) byte) string {
	t.Helper()
	spec, err := synthdata.WriteIDX(dir, n, h, w, pix, label)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func smallPNG(t *testing.T) []byte {
	m := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for i := range m.Pix {
		m.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func newProbeInputs(t *testing.T) probeInputs {
	t.Helper()
	d, err := mnistdata.Dir()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := probeInputs{mnist: "mnist:" + d}
	stripes := func(i, y, x int) byte { return byte((i*31 + y*7 + x*3) % 251) }
	p.idx5 = writeIDXFiles(t, filepath.Join(dir, "idx5"), 200, 28, 28, stripes, func(i int) byte { return byte(i % 5) })
	p.idx32 = writeIDXFiles(t, filepath.Join(dir, "idx32"), 100, 32, 32, stripes, func(i int) byte { return byte(i % 10) })
	p.idxStray = writeIDXFiles(t, filepath.Join(dir, "stray"), 200, 28, 28, stripes, func(i int) byte {
		if i == 7 {
			return 200
		}
		return byte(i % 10)
	})
	// A tar whose members escape the archive root.
	pngb := smallPNG(t)
	p.traversal = filepath.Join(dir, "traversal.tar")
	f, err := os.Create(p.traversal)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, name := range []string{"a/0.png", "a/1.png", "b/0.png", "b/1.png", "../../etc/x/evil.png", "/abs/a/evil.png"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(pngb)), Typeflag: tar.TypeReg})
		tw.Write(pngb)
	}
	tw.Close()
	f.Close()
	mkFolder := func(name string) string {
		root := filepath.Join(dir, name)
		for _, c := range []string{"a", "b"} {
			os.MkdirAll(filepath.Join(root, c), 0o755)
			for i := range 3 {
				os.WriteFile(filepath.Join(root, c, fmt.Sprintf("%d.png", i)), pngb, 0o644)
			}
		}
		return root
	}
	p.zeroDir = mkFolder("zero")
	os.Symlink("/dev/zero", filepath.Join(p.zeroDir, "a", "zero.png"))
	p.fifoDir = mkFolder("fifo")
	if err := syscall.Mkfifo(filepath.Join(p.fifoDir, "a", "pipe.png"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.run = filepath.Join(dir, "run")
	var out, errb bytes.Buffer
	if code := run(append(tinyTrain(p.mnist), "--out", p.run), &out, &errb); code != 0 {
		t.Fatalf("tiny run: exit %d\n%s", code, errb.String())
	}
	return p
}

// tinyTrain is the probe's T: a seconds-long cnn-mnist run.
func tinyTrain(mnist string) []string {
	return []string{"train", "--model=cnn-mnist", "--train-data=" + mnist, "--test-data=" + mnist,
		"--max-train-examples=500", "--max-test-examples=100", "--steps=4", "--threads=1", "--batch-size=50",
		"--clip-norm=1", "--noise-multiplier=1", "--learning-rate=0.1"}
}

// TestProbeInputsGiveErrorsNotPanics feeds train, eval, prepare, bench,
// privacy and demo the reliability probe's hostile and careless inputs:
// each must end with exit status 1 or 2 and an error naming the problem,
// never a panic, a runtime fatal error or a hang.
func TestProbeInputsGiveErrorsNotPanics(t *testing.T) {
	p := newProbeInputs(t)
	T := tinyTrain(p.mnist)
	with := func(extra ...string) []string { return append(append([]string(nil), T...), extra...) }
	out := func() string { return filepath.Join(t.TempDir(), "out") }
	for _, tc := range []struct {
		id   string
		args []string
		want string
	}{
		{"H3 test labels beyond the training classes", with("--train-data="+p.idx5, "--out", out()), "has label"},
		{"M2 eval on 32×32 data", []string{"eval", "--checkpoint", p.run, "--data", p.idx32}, "the model takes 1×28×28"},
		{"M4 link to /dev/zero", with("--train-data=imagefolder:"+p.zeroDir, "--test-data=", "--batch-size=2", "--max-train-examples=0", "--out", out()), "zero.png"},
		{"M4 FIFO", with("--train-data=imagefolder:"+p.fifoDir, "--test-data=", "--batch-size=2", "--max-train-examples=0", "--out", out()), "pipe.png"},
		{"M5 crop_size", with("--crop=center", "--crop-size=10000", "--out", out()), "crop_size: 10000"},
		{"M5 prepare image size", []string{"prepare", "--src", p.traversal, "--out", out(), "--image-size", "100000"}, "100000"},
		{"M5 bench image size", []string{"bench", "--model", "cnn-mnist", "--image-size", "100000", "--batch-size", "8", "--steps", "2"}, "--image-size 100000"},
		{"M5 aug_multiplicity", with("--aug-multiplicity=100000", "--out", out()), "aug_multiplicity: 100000"},
		{"L3 newline in a flag value", with("--steps=5\nbatch_size: 7", "--out", out()), "line break"},
		{"L4 max_train_examples", with("--max-train-examples=-5", "--out", out()), "max_train_examples: -5"},
		{"L4 checkpoint_every", with("--checkpoint-every=-1", "--out", out()), "checkpoint_every: -1"},
		{"L4 threads", with("--threads=100000", "--out", out()), "threads: 100000"},
		{"L4 eval extra argument", []string{"eval", "--checkpoint", p.run, "--data", p.mnist, "extra"}, `unexpected argument "extra"`},
		{"L4 bench classes 0", []string{"bench", "--model", "cnn-mnist", "--image-size", "28", "--classes", "0"}, "--classes 0"},
		{"bench noise mode", []string{"bench", "--model", "cnn-mnist", "--image-size", "28", "--noise", "pseudo"}, "--noise: want one of seeded, secure"},
		{"L4 bench steps 0", []string{"bench", "--model", "cnn-mnist", "--image-size", "28", "--steps", "0"}, "--steps 0"},
		{"L4 demo target epsilon", []string{"demo", "--target-epsilon=-1", "--out", out()}, "--target-epsilon -1"},
		{"L4 demo epochs NaN", []string{"demo", "--epochs=NaN", "--out", out()}, "--epochs NaN"},
		{"L5 tar members escaping the root", with("--train-data=imagefolder:"+p.traversal, "--test-data=", "--batch-size=2", "--max-train-examples=0", "--out", out()), "evil.png"},
		{"L5 stray idx label", with("--train-data="+p.idxStray, "--test-data=", "--out", out()), "200"},
		{"L8 clip norm overflow", with("--clip-norm=1e308", "--out", out()), "clip_norm: 1e+308 is too large"},
		{"L8 eval of a missing checkpoint", []string{"eval", "--checkpoint", filepath.Join(t.TempDir(), "nonexist"), "--data", p.mnist}, "no such file"},
		{"L9 privacy epsilon at a huge σ", []string{"privacy", "epsilon", "--sampling-rate", "0.01", "--steps", "1000", "--noise-multiplier", "1e300", "--delta", "1e-5"}, ""},
		{"M6 epochs NaN", with("--steps=0", "--epochs=.nan", "--out", out()), "epochs"},
		{"M7 σ too small to account", with("--noise-multiplier=1e-9", "--out", out()), "rdp"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := func() (code int) {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic: %v", r)
					}
				}()
				return run(tc.args, &stdout, &stderr)
			}()
			msg := stderr.String()
			if strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine ") || strings.Contains(msg, "fatal error") {
				t.Fatalf("stderr shows a crash:\n%s", msg)
			}
			if tc.want == "" { // a correct result is also fine: it must not be NaN
				if code == 0 && strings.Contains(stdout.String(), "NaN") {
					t.Fatalf("exit 0 with NaN: %s", stdout.String())
				}
				return
			}
			if code == 0 || !strings.Contains(msg, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant a non-zero exit and %q", code, msg, tc.want)
			}
		})
	}
}

// TestSIGINTCheckpointsAndResumes covers L10 end to end: Ctrl-C (SIGINT)
// in a real process ends it with status 130 after a checkpoint of the
// step it was on, and says how to resume; the same command then resumes
// from that step.
func TestSIGINTCheckpointsAndResumes(t *testing.T) {
	d, err := mnistdata.Dir()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	args := append(tinyTrain("mnist:"+d), "--steps=100000", "--checkpoint-every=100000", "--log-every=1", "--noise=seeded", "--out", out)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DPTRAIN_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var log strings.Builder
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		if !signalled && strings.HasPrefix(line, "step 2/") {
			cmd.Process.Signal(syscall.SIGINT)
			signalled = true
		}
	}
	err = cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, want status %d\n%s", err, exitInterrupted, log.String())
	}
	var step int64
	if _, err := fmt.Sscanf(log.String()[strings.Index(log.String(), "interrupted at step "):], "interrupted at step %d", &step); err != nil || step < 2 {
		t.Fatalf("no 'interrupted at step N' (N ≥ 2) in:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "rerun the same command to resume") {
		t.Fatalf("no resume hint in:\n%s", log.String())
	}
	// The rerun (shorter, so that it finishes) must resume at that step:
	// a different step count is a different run, so check the checkpoint.
	ents, _ := os.ReadDir(filepath.Join(out, "checkpoints"))
	last := ents[len(ents)-1].Name()
	if last != fmt.Sprintf("ckpt-%010d", step) {
		t.Fatalf("newest checkpoint %s, want the interrupted step %d", last, step)
	}
}
