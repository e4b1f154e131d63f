package torchref

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"dptrain/checkpoint"
)

func TestResNet18(t *testing.T) {
	start := time.Now()
	ref := ResNet(t, "resnet18", 10, 2, 32, 32, 1)
	t.Logf("resnet18 reference in %v", time.Since(start))
	if len(ref.Input) != 2*3*32*32 || len(ref.Logits) != 2*10 || len(ref.Logits64) != 2*10 {
		t.Fatalf("sizes: input %d logits %d logits64 %d", len(ref.Input), len(ref.Logits), len(ref.Logits64))
	}
	ts, meta, err := checkpoint.ReadSafetensors(ref.Weights)
	if err != nil {
		t.Fatal(err)
	}
	if meta["format"] != "torchvision" || meta["arch"] != "resnet18" {
		t.Errorf("metadata %v", meta)
	}
	// resnet18: conv1 + bn1 (5 tensors: weight, bias, running_mean,
	// running_var, num_batches_tracked) + 8 blocks of conv,bn,conv,bn (12
	// each) + 3 downsamples of conv,bn (6 each) + fc (2).
	if want := 1 + 5 + 8*12 + 3*6 + 2; len(ts) != want {
		t.Errorf("%d tensors, want %d", len(ts), want)
	}
	shapes := map[string][]int{
		"conv1.weight":                      {64, 3, 7, 7},
		"bn1.weight":                        {64},
		"bn1.num_batches_tracked":           {},
		"layer1.0.conv1.weight":             {64, 64, 3, 3},
		"layer2.0.downsample.0.weight":      {128, 64, 1, 1},
		"layer2.0.downsample.1.running_var": {128},
		"layer4.1.bn2.bias":                 {512},
		"fc.weight":                         {10, 512},
		"fc.bias":                           {10},
	}
	for name, want := range shapes {
		got, ok := ts[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if !slices.Equal(got.Shape, want) {
			t.Errorf("%s: shape %v, want %v", name, got.Shape, want)
		}
	}
	// BatchNorm statistics are randomised, not the fresh 0/1.
	if v := ts["bn1.num_batches_tracked"].Data[0]; v == 0 || v != float32(int(v)) {
		t.Errorf("bn1.num_batches_tracked = %v, want a nonzero integer", v)
	}
	for _, x := range ts["layer1.0.bn1.running_var"].Data {
		if x < 0.5 || x > 2 {
			t.Fatalf("running_var %v outside [0.5, 2]", x)
		}
	}
	for _, x := range ts["layer1.0.bn1.weight"].Data {
		if x < 0.5 || x > 1.5 {
			t.Fatalf("bn weight %v outside [0.5, 1.5]", x)
		}
	}
	if ts["layer1.0.bn1.running_mean"].Data[0] == 0 || ts["layer1.0.bn1.bias"].Data[0] == 0 {
		t.Errorf("running_mean / bias left at zero")
	}
	raws := readRaw(t, ref.Weights)
	if r := raws["bn1.num_batches_tracked"]; r.DType != checkpoint.I64 {
		t.Errorf("num_batches_tracked dtype %s, want I64", r.DType)
	}
	if r := raws["conv1.weight"]; r.DType != checkpoint.F32 {
		t.Errorf("conv1.weight dtype %s, want F32", r.DType)
	}

	// float32 and float64 logits agree; they are not all equal.
	var maxAbs, maxDiff float64
	for i, y := range ref.Logits64 {
		maxAbs = math.Max(maxAbs, math.Abs(y))
		maxDiff = math.Max(maxDiff, math.Abs(float64(ref.Logits[i])-y))
	}
	if maxAbs == 0 || math.IsNaN(maxDiff) || maxDiff > 1e-4*maxAbs {
		t.Errorf("float32 vs float64 logits: max diff %g, max |logit| %g", maxDiff, maxAbs)
	}
	if ref.Logits[0] == ref.Logits[1] || ref.Logits[0] == ref.Logits[10] {
		t.Errorf("degenerate logits %v", ref.Logits)
	}
	t.Logf("max |logit| %.4g, float32 vs float64 max diff %.3g", maxAbs, maxDiff)
}

func readRaw(t *testing.T, path string) map[string]checkpoint.Raw {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := checkpoint.DecodeSafetensorsRaw(b)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestPthToSafetensors converts a DataParallel-style training checkpoint
// ({'state_dict': {'module.'+k: v}}) with scripts/pth_to_safetensors.py and
// checks that it gives the same tensors, bit for bit, as the direct export;
// then the other layouts the converter accepts, and a wrong --arch.
func TestPthToSafetensors(t *testing.T) {
	py := Skip(t)
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "pth_to_safetensors.py"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pth := filepath.Join(dir, "resnet18_places365.pth.tar")
	ref := resnet(t, "resnet18", 7, 1, 32, 32, 3, pth)
	want := readRaw(t, ref.Weights)
	same := func(label, path string, tensors int) {
		t.Helper()
		got := readRaw(t, path)
		if len(got) != tensors {
			t.Errorf("%s: %d tensors, want %d", label, len(got), tensors)
		}
		for name, g := range got {
			w, ok := want[name]
			switch {
			case !ok:
				t.Errorf("%s: unexpected %s", label, name)
			case g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data):
				t.Errorf("%s: %s: got %s %v, want %s %v (or the data differ)", label, name, g.DType, g.Shape, w.DType, w.Shape)
			}
		}
	}

	out := filepath.Join(dir, "out.safetensors")
	cmd := exec.CommandContext(t.Context(), py, script, pth, out, "--arch", "resnet18")
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=2", "PYTHONDONTWRITEBYTECODE=1")
	stdout, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("convert: %v\n%s", err, stdout)
	}
	summary := strings.TrimSpace(string(stdout))
	t.Log(summary)
	// torchvision's 11,689,512 parameters with fc 7×512+7 instead of
	// 1000×512+1000.
	if w := "122 tensors, 11180103 parameters, 7 classes"; !strings.Contains(summary, w) {
		t.Errorf("summary %q, want it to contain %q", summary, w)
	}
	same("wrapped", out, len(want))
	_, meta, err := checkpoint.ReadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	if meta["source"] != "resnet18_places365.pth.tar" || meta["format"] != "torchvision" {
		t.Errorf("metadata %v", meta)
	}
	if ents, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(ents) != 0 {
		t.Errorf("temporary files left: %v", ents)
	}

	cmd = exec.CommandContext(t.Context(), py, "-c", variantsScript, pth, script, dir)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=2", "PYTHONDONTWRITEBYTECODE=1")
	stdout, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	t.Logf("%s", stdout)
	res := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(stdout)), "\n") {
		if name, rest, ok := strings.Cut(line, "\t"); ok {
			res[name] = rest
		}
	}
	for _, v := range []struct {
		name    string
		tensors int
	}{{"bare", 122}, {"model", 122}, {"legacy", 122 - 20}} {
		if !strings.HasPrefix(res[v.name], "0\t") {
			t.Errorf("%s: conversion failed: %q", v.name, res[v.name])
			continue
		}
		same(v.name, filepath.Join(dir, v.name+".safetensors"), v.tensors)
	}
	// The wrong architecture is refused, naming the key, and writes nothing.
	if r := res["resnet34"]; !strings.Contains(r, "missing key layer1.2.") || strings.HasPrefix(r, "0\t") {
		t.Errorf("--arch resnet34 on a resnet18 checkpoint: %q, want an error naming missing key layer1.2.*", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "resnet34.safetensors")); !os.IsNotExist(err) {
		t.Errorf("output written despite the error (stat: %v)", err)
	}
}

// variantsScript saves the wrapped checkpoint argv[1] in other layouts and
// converts each, in one process, with the converter argv[2] into the
// directory argv[3]; it prints one line per case: name, tab, exit status
// (0, or sys.exit's message), tab, the converter's summary.
const variantsScript = `
import contextlib, io, os, runpy, sys, torch
src, script, d = sys.argv[1:4]
sd = {k[len("module."):]: v for k, v in torch.load(src, map_location="cpu")["state_dict"].items()}
cases = [
    ("bare", sd, "resnet18"),
    ("model", {"model": sd, "epoch": 3}, "resnet18"),
    ("legacy", {"state_dict": {"module." + k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}}, "resnet18"),
    ("resnet34", sd, "resnet34"),
]
for name, obj, arch in cases:
    p = os.path.join(d, name + ".pth")
    torch.save(obj, p)
    sys.argv = [script, p, os.path.join(d, name + ".safetensors"), "--arch", arch]
    buf, code = io.StringIO(), 0
    try:
        with contextlib.redirect_stdout(buf):
            runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        code = e.code
    print("%s\t%s\t%s" % (name, code, buf.getvalue().strip()))
`

func TestRequire(t *testing.T) {
	t.Setenv(RequireEnv, "1")
	if !Require() {
		t.Error("Require() = false with DPTRAIN_REQUIRE_TORCH=1")
	}
	t.Setenv(RequireEnv, "0")
	if Require() {
		t.Error("Require() = true with DPTRAIN_REQUIRE_TORCH=0")
	}
}
