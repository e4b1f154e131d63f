package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dptrain/internal/kerasref"
	"dptrain/internal/synthdata"
)

// TestImportPredictTrain: a Keras ResNet-50 (synthetic weights, the real
// topology) is imported; predict classifies a PNG with the recorded
// preprocessing; train fine-tunes a new 10-class head privately with
// --init and no model or normalisation given (the checkpoint supplies
// them); eval reads the result.
func TestImportPredictTrain(t *testing.T) {
	dir := t.TempDir()
	tfjs := filepath.Join(dir, "tfjs")
	if err := os.Mkdir(tfjs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := kerasref.WriteSynthetic(tfjs, kerasref.ResNet50ModelJSON, 9, 2); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 1000)
	for i := range names {
		names[i] = "class-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
	}
	labels := filepath.Join(dir, "labels.txt")
	if err := os.WriteFile(labels, []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	imported := filepath.Join(dir, "imported")
	runOK(t, "import", "--from=tfjs:"+tfjs, "--labels="+labels, "--out="+imported)

	img := image.NewRGBA(image.Rect(0, 0, 50, 40))
	for y := 0; y < 40; y++ {
		for x := 0; x < 50; x++ {
			img.Set(x, y, color.RGBA{uint8(5 * x), uint8(6 * y), uint8(x * y), 255})
		}
	}
	photo := filepath.Join(dir, "photo.png")
	f, err := os.Create(photo)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var pout, perr bytes.Buffer
	if code := run([]string{"predict", "--checkpoint=" + imported, "--json", "--top=3", photo}, &pout, &perr); code != 0 {
		t.Fatalf("predict: exit %d: %s", code, perr.String())
	}
	out := pout.String()
	var res struct {
		Weights     string
		Predictions []struct {
			Image string
			Top   []struct {
				Class int
				Name  string
				Prob  float64
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.Weights != "imported" || len(res.Predictions) != 1 || len(res.Predictions[0].Top) != 3 {
		t.Fatalf("predict: %s", out)
	}
	top := res.Predictions[0].Top
	for i, c := range top {
		if c.Name != names[c.Class] || !(c.Prob > 0 && c.Prob <= 1) || (i > 0 && c.Prob > top[i-1].Prob) {
			t.Errorf("top %d: %+v (want the class's name, probabilities in (0, 1] descending)", i, c)
		}
	}

	data := filepath.Join(dir, "cifar")
	if err := synthdata.WriteCIFAR10(data, 64, 16, 3); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	trainOut := runOK(t, "train", "--init="+imported, "--train-data=cifar10:"+data, "--test-data=cifar10:"+data,
		"--train-last-layer-only", "--batch-size=8", "--steps=2", "--clip-norm=1", "--noise-multiplier=1",
		"--learning-rate=0.1", "--delta=1e-3", "--noise=seeded", "--out="+runDir)
	// resnet50-keras from the checkpoint, a new 10-class head: 2048·10 + 10
	// trainable values of 25,636,712 − 2048·1000 − 1000 + 20,490.
	if !strings.Contains(trainOut, "resnet50-keras") || !strings.Contains(trainOut, "20490 trainable of 23608202 parameters") {
		t.Errorf("train output does not show the imported model with a new head:\n%s", trainOut)
	}
	if !strings.Contains(trainOut, "privacy spent") {
		t.Errorf("no privacy line:\n%s", trainOut)
	}
	// Another architecture than the import's is refused, not half-loaded.
	var eout, eerr bytes.Buffer
	code := run([]string{"train", "--init=" + imported, "--model=resnet50", "--train-data=cifar10:" + data, "--train-last-layer-only",
		"--batch-size=8", "--steps=1", "--clip-norm=1", "--noise-multiplier=1", "--learning-rate=0.1", "--delta=1e-3",
		"--out=" + filepath.Join(dir, "mismatch")}, &eout, &eerr)
	if code == 0 || !strings.Contains(eerr.String(), "the imported model is resnet50-keras") || !strings.Contains(eerr.String(), "asks for resnet50") {
		t.Errorf("train with another model than the import's: exit %d, stderr %q", code, eerr.String())
	}
	// An imported model is evaluated with its own preprocessing; data whose
	// classes are not the model's (by name) is refused, naming the class.
	eout.Reset()
	eerr.Reset()
	if code := run([]string{"eval", "--checkpoint=" + imported, "--data=cifar10:" + data}, &eout, &eerr); code == 0 || !strings.Contains(eerr.String(), "the model's class 0 is \"class-a\"") {
		t.Errorf("eval of the import on other classes: exit %d, stderr %q", code, eerr.String())
	}
	// With class names that match the data's, eval runs on the import as
	// it is (the recorded caffe preprocessing, images resized as stored).
	copy(names, []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"})
	if err := os.WriteFile(labels, []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	named := filepath.Join(dir, "named")
	runOK(t, "import", "--from=tfjs:"+tfjs, "--labels="+labels, "--out="+named)
	if out := runOK(t, "eval", "--checkpoint="+named, "--data=cifar10:"+data); !strings.Contains(out, "imported weights") || !strings.Contains(out, "top-1") {
		t.Errorf("eval of the import: %s", out)
	}
	evalOut := runOK(t, "eval", "--checkpoint="+runDir, "--data=cifar10:"+data)
	if !strings.Contains(evalOut, "top-1") {
		t.Errorf("eval: %s", evalOut)
	}
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("dptrain %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	}
	return out.String() + errb.String()
}

// TestImportErrors: bad sources are refused with the file or flag named.
func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from=tfjs:" + filepath.Join(dir, "none"), "--out=" + dir}, "model.json"},
		{[]string{"--from=onnx:x.onnx", "--out=" + dir}, "unknown source"},
		{[]string{"--from=torchvision:" + filepath.Join(dir, "none.safetensors"), "--out=" + dir}, "none.safetensors"},
		{[]string{"--from=tfjs:x"}, "--out"},
		{[]string{"--from=tfjs:x", "--model=resnet18", "--out=" + dir}, "resnet50-keras"},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"import"}, tc.args...), &out, &errb); code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("import %v: exit %d, stderr %q, want an error mentioning %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
