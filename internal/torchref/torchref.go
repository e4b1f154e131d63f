package torchref

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

//go:embed resnet_ref.py
var resnetScript string

// RequireEnv is the environment variable that, set to 1, makes Skip fail
// instead of skip when PyTorch is unavailable.
const RequireEnv = "DPTRAIN_REQUIRE_TORCH"

// candidates are the interpreters Python tries, in order.
func candidates() []string {
	c := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil && p != c[0] {
		c = append(c, p)
	}
	return c
}

var probe struct {
	once sync.Once
	path string
	err  error
}

// Python returns the path of a python3 that imports torch and torchvision
// (it tries /usr/bin/python3, then python3 on PATH), or an error saying what
// to install. The result is computed once per process.
func Python() (string, error) {
	probe.once.Do(func() {
		var tried []string
		for _, p := range candidates() {
			cmd := exec.Command(p, "-c", "import torch, torchvision")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if err == nil {
				probe.path = p
				return
			}
			tried = append(tried, fmt.Sprintf("%s: %s", p, lastLine(stderr.String(), err)))
		}
		probe.err = fmt.Errorf("torchref: no python3 imports torch and torchvision (install them, e.g. apt-get install python3-torch python3-torchvision, or pip install torch torchvision); tried %s",
			strings.Join(tried, "; "))
	})
	return probe.path, probe.err
}

// lastLine returns the last non-empty line of s, or err's text.
func lastLine(s string, err error) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return err.Error()
}

// Require reports whether tests must fail rather than skip when PyTorch is
// missing: when the environment has DPTRAIN_REQUIRE_TORCH=1.
func Require() bool { return os.Getenv(RequireEnv) == "1" }

// Skip calls t.Skip (or t.Fatal when Require()) when PyTorch is unavailable,
// and returns the python path otherwise.
func Skip(t testing.TB) string {
	t.Helper()
	p, err := Python()
	if err != nil {
		if Require() {
			t.Fatalf("%v (%s=1)", err, RequireEnv)
		}
		t.Skip(err)
	}
	return p
}

// ResNetRef is a torchvision ResNet's weights with its eval-mode outputs for
// one input, as computed by PyTorch.
type ResNetRef struct {
	// Weights is the path of a .safetensors file holding the model's
	// state_dict under torchvision's names (conv1.weight, bn1.weight,
	// bn1.bias, bn1.running_mean, bn1.running_var, bn1.num_batches_tracked,
	// layer1.0.conv1.weight, ..., layer2.0.downsample.0.weight,
	// layer2.0.downsample.1.*, fc.weight, fc.bias), F32 except
	// num_batches_tracked (I64), with metadata format=torchvision, arch and
	// seed. It lies in the test's t.TempDir().
	Weights string
	// Input is the N×3×H×W input, NCHW.
	Input   []float32
	N, H, W int
	// Logits are the N×Classes outputs of the model in eval() mode in
	// float32; Logits64 those of the same model converted to float64
	// (model.double()) on the same input.
	Logits   []float32
	Logits64 []float64
	Classes  int
}

// Archs are the architectures ResNet accepts.
var Archs = []string{"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}

// ResNet builds torchvision.models.<arch>(num_classes=classes) in PyTorch
// with the default initialisation after torch.manual_seed(seed), then
// randomises every BatchNorm's running_mean (N(0,0.1²)), running_var
// (U(0.5,2)), weight (U(0.5,1.5)) and bias (N(0,0.1²)) and sets its
// num_batches_tracked to a nonzero integer, saves the state dict as
// safetensors under t.TempDir(), draws the input torch.randn(n,3,h,w) from a
// generator seeded with seed, and returns the eval-mode logits. It skips the
// test when PyTorch is missing (see Skip) and fails it on any other error.
// The input depends only on seed, n, h and w, not on arch or classes.
func ResNet(t testing.TB, arch string, classes, n, h, w int, seed int) *ResNetRef {
	t.Helper()
	return resnet(t, arch, classes, n, h, w, seed, "")
}

// resnet is ResNet; with wrapped != "" the script also torch.saves the state
// dict there as {'state_dict': {'module.'+k: v}, 'arch': arch}.
func resnet(t testing.TB, arch string, classes, n, h, w int, seed int, wrapped string) *ResNetRef {
	t.Helper()
	known := false
	for _, a := range Archs {
		known = known || a == arch
	}
	if !known {
		t.Fatalf("torchref.ResNet: unknown arch %q (want one of %v)", arch, Archs)
	}
	if classes < 1 || n < 1 || h < 1 || w < 1 {
		t.Fatalf("torchref.ResNet: classes=%d n=%d h=%d w=%d: all must be positive", classes, n, h, w)
	}
	py := Skip(t)
	dir := t.TempDir()
	args := []string{"-c", resnetScript, arch,
		strconv.Itoa(classes), strconv.Itoa(n), strconv.Itoa(h), strconv.Itoa(w), strconv.Itoa(seed), dir}
	if wrapped != "" {
		args = append(args, wrapped)
	}
	if err := RunPython(t, py, args...); err != nil {
		t.Fatalf("torchref.ResNet(%s): %v", arch, err)
	}
	ref := &ResNetRef{Weights: filepath.Join(dir, "weights.safetensors"), N: n, H: h, W: w, Classes: classes}
	var err error
	if ref.Input, err = readF32(filepath.Join(dir, "input.bin"), n*3*h*w); err != nil {
		t.Fatal(err)
	}
	if ref.Logits, err = readF32(filepath.Join(dir, "logits.bin"), n*classes); err != nil {
		t.Fatal(err)
	}
	if ref.Logits64, err = readF64(filepath.Join(dir, "logits64.bin"), n*classes); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ref.Weights); err != nil {
		t.Fatal(err)
	}
	return ref
}

// RunPython runs py with args under the test's context, with at most two
// torch threads, and returns an error holding the output when it fails.
func RunPython(t testing.TB, py string, args ...string) error {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), py, args...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=2", "MKL_NUM_THREADS=2", "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", filepath.Base(py), err, out)
	}
	return nil
}

// readF32 reads a file of exactly want little-endian float32 values.
func readF32(path string, want int) ([]float32, error) {
	b, err := readN(path, want, 4)
	if err != nil {
		return nil, err
	}
	out := make([]float32, want)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// readF64 reads a file of exactly want little-endian float64 values.
func readF64(path string, want int) ([]float64, error) {
	b, err := readN(path, want, 8)
	if err != nil {
		return nil, err
	}
	out := make([]float64, want)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out, nil
}

func readN(path string, want, size int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("torchref: %w", err)
	}
	if len(b) != want*size {
		return nil, fmt.Errorf("torchref: %s: %d bytes, want %d (%d values of %d bytes)", path, len(b), want*size, want, size)
	}
	return b, nil
}
