package pretrained_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dptrain/internal/kerasref"
	"dptrain/pretrained"
	"dptrain/tensor"
)

// caffeMeanRGB is Keras's ImageNet mean, in RGB order.
var caffeMeanRGB = [3]float64{123.68, 116.779, 103.939}

// synthTFJS writes a Keras ResNet-50 layers-model with random weights
// (kerasref's writer, the real model.json's topology) and returns its dir.
func synthTFJS(t *testing.T, modelJSON []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := kerasref.WriteSynthetic(dir, modelJSON, 5, 3); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFromTFJSMatchesKerasReference imports a synthetic Keras ResNet-50 and
// checks its logits against kerasref's float64 interpreter of the Keras
// graph, on random RGB images preprocessed each side's way: Keras's caffe
// mode (BGR, mean subtracted) for the reference, dptrain's RGB input with
// the recorded normalisation for the import.
func TestFromTFJSMatchesKerasReference(t *testing.T) {
	dir := synthTFJS(t, kerasref.ResNet50ModelJSON)
	im, err := pretrained.FromTFJS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if im.Config.Name != "resnet50-keras" || im.Config.NumClasses != 1000 || im.Normalize != "caffe" {
		t.Fatalf("imported %+v normalize %q", im.Config, im.Normalize)
	}
	if got := im.Model.NumParams(); got != 25636712 {
		t.Errorf("%d values, want the model.json's 25,636,712", got)
	}
	ref, err := kerasref.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	const n, h, w = 2, 64, 48
	r := rand.New(rand.NewPCG(1, 2))
	x := tensor.New(n, 3, h, w)
	var want [][]float64
	for i := 0; i < n; i++ {
		rgb := make([]float64, h*w*3)
		for j := range rgb {
			rgb[j] = float64(r.IntN(256))
		}
		for c := 0; c < 3; c++ {
			for p := 0; p < h*w; p++ {
				x.Data[(i*3+c)*h*w+p] = float32(rgb[p*3+c] - caffeMeanRGB[c])
			}
		}
		lg, err := ref.Logits(kerasref.CaffePreprocess(rgb, h, w), h, w)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, lg)
	}
	y := im.Model.Forward(x, false)
	checkLogits(t, y.Data, want, 1e-3)
}

// checkLogits compares float32 logits with float64 references: each
// logit within tol·(1 + max |logit|) of its row, and the same top class.
func checkLogits(t *testing.T, got []float32, want [][]float64, tol float64) {
	t.Helper()
	k := len(want[0])
	for i, row := range want {
		scale := 0.0
		for _, v := range row {
			scale = math.Max(scale, math.Abs(v))
		}
		worst := 0.0
		for j, v := range row {
			worst = math.Max(worst, math.Abs(float64(got[i*k+j])-v))
		}
		t.Logf("example %d: max |Δ| %.3g, max |logit| %.3g", i, worst, scale)
		if worst > tol*(1+scale) {
			t.Errorf("example %d: logits differ by %.3g (max |logit| %.3g, tolerance %.3g)", i, worst, scale, tol*(1+scale))
		}
		if a, b := argmax32(got[i*k:(i+1)*k]), argmax64(row); a != b {
			t.Errorf("example %d: top class %d, reference %d", i, a, b)
		}
	}
}

func argmax32(v []float32) int {
	b := 0
	for i := range v {
		if v[i] > v[b] {
			b = i
		}
	}
	return b
}

func argmax64(v []float64) int {
	b := 0
	for i := range v {
		if v[i] > v[b] {
			b = i
		}
	}
	return b
}

// editJSON rewrites the real model.json through f (on its decoded form).
func editJSON(t *testing.T, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(kerasref.ResNet50ModelJSON, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func layers(m map[string]any) []any {
	return m["modelTopology"].(map[string]any)["model_config"].(map[string]any)["config"].(map[string]any)["layers"].([]any)
}

func layerCfg(m map[string]any, name string) map[string]any {
	for _, l := range layers(m) {
		if l := l.(map[string]any); l["name"] == name {
			return l["config"].(map[string]any)
		}
	}
	panic("no layer " + name)
}

// TestFromTFJSErrors: each bad input is refused with an error naming the
// file and the layer, weight or shard concerned.
func TestFromTFJSErrors(t *testing.T) {
	base := synthTFJS(t, kerasref.ResNet50ModelJSON)
	manifest := func(m map[string]any) map[string]any {
		return m["weightsManifest"].([]any)[0].(map[string]any)
	}
	// Every case starts from a copy of base, then breaks one thing.
	for _, tc := range []struct {
		name  string
		edit  func(t *testing.T, dir string)
		wants []string
	}{
		{"missing model.json", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "model.json")) }, []string{"model.json"}},
		{"missing shard", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "group1-shard2of3.bin")) }, []string{"group1-shard2of3.bin"}},
		{"truncated shard", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "group1-shard3of3.bin")
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-4)
		}, []string{"truncated or missing"}},
		{"stride changed", func(t *testing.T, dir string) {
			writeJSON(t, dir, func(m map[string]any) { layerCfg(m, "res3a_branch2a")["strides"] = []any{1.0, 1.0} })
		}, []string{"res3a_branch2a", "stride 1", "stride 2", "layer2.0.conv1"}},
		{"unknown layer class", func(t *testing.T, dir string) {
			writeJSON(t, dir, func(m map[string]any) {
				for _, l := range layers(m) {
					if l := l.(map[string]any); l["name"] == "activation_1" {
						l["class_name"] = "LeakyReLU"
					}
				}
			})
		}, []string{"activation_1", "LeakyReLU"}},
		{"dtype", func(t *testing.T, dir string) {
			writeJSON(t, dir, func(m map[string]any) {
				manifest(m)["weights"].([]any)[0].(map[string]any)["dtype"] = "int32"
			})
		}, []string{"bn2a_branch1/gamma", "int32"}},
		{"shape mismatch", func(t *testing.T, dir string) {
			writeJSON(t, dir, func(m map[string]any) {
				for _, w := range manifest(m)["weights"].([]any) {
					if w := w.(map[string]any); w["name"] == "fc1000/bias" {
						w["shape"] = []any{1000.0, 1.0}
					}
				}
			})
		}, []string{"fc1000/bias", "[1000 1]", "[1000]"}},
		{"graph model", func(t *testing.T, dir string) {
			writeJSON(t, dir, func(m map[string]any) { m["format"] = "graph-model" })
		}, []string{"graph-model", "layers-model"}},
		{"block missing", func(t *testing.T, dir string) {
			writeJSON(t, dir, func(m map[string]any) {
				// route add_15 around the last block's main branch
				for _, l := range layers(m) {
					if l := l.(map[string]any); l["name"] == "add_15" {
						l["inbound_nodes"] = []any{[]any{[]any{"activation_45", 0.0, 0.0, map[string]any{}}, []any{"activation_45", 0.0, 0.0, map[string]any{}}}}
					}
				}
			})
		}, []string{"not a Keras ResNet-50 graph"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, base, dir)
			tc.edit(t, dir)
			_, err := pretrained.FromTFJS(dir)
			if err == nil {
				t.Fatal("imported")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func writeJSON(t *testing.T, dir string, f func(map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	es, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFromTFJSOtherEpsilonAndNames: a ResNet-50 whose layers all have other
// names and a BatchNorm ε of 1.001e-5 (tf.keras.applications' choice)
// imports, and still matches the reference: the graph is recognised by its
// structure, and ε moves into the running variance.
func TestFromTFJSOtherEpsilonAndNames(t *testing.T) {
	js := editJSON(t, func(m map[string]any) {
		rename := func(s string) string { return "blk_" + strings.ReplaceAll(s, "_", "") }
		for _, l := range layers(m) {
			l := l.(map[string]any)
			if l["class_name"] == "BatchNormalization" {
				eps := 1.001e-5 // tf.keras.applications' ε
				if l["name"] == "bn2a_branch2a" {
					eps = 2e-3 // one layer with another: moved into its variance
				}
				l["config"].(map[string]any)["epsilon"] = eps
			}
			l["name"] = rename(l["name"].(string))
			for _, node := range l["inbound_nodes"].([]any) {
				for _, in := range node.([]any) {
					in := in.([]any)
					in[0] = rename(in[0].(string))
				}
			}
		}
		cfg := m["modelTopology"].(map[string]any)["model_config"].(map[string]any)["config"].(map[string]any)
		for _, key := range []string{"input_layers", "output_layers"} {
			for _, io := range cfg[key].([]any) {
				io := io.([]any)
				io[0] = rename(io[0].(string))
			}
		}
		for _, w := range m["weightsManifest"].([]any)[0].(map[string]any)["weights"].([]any) {
			w := w.(map[string]any)
			layer, name, _ := strings.Cut(w["name"].(string), "/")
			w["name"] = rename(layer) + "/" + name
		}
	})
	dir := synthTFJS(t, js)
	im, err := pretrained.FromTFJS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if im.Config.BatchNormEps != 1.001e-5 {
		t.Errorf("BatchNormEps %g, want the model's 1.001e-5", im.Config.BatchNormEps)
	}
	ref, err := kerasref.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	const h, w = 40, 40
	r := rand.New(rand.NewPCG(3, 4))
	rgb := make([]float64, h*w*3)
	x := tensor.New(1, 3, h, w)
	for j := range rgb {
		rgb[j] = float64(r.IntN(256))
	}
	for c := 0; c < 3; c++ {
		for p := 0; p < h*w; p++ {
			x.Data[c*h*w+p] = float32(rgb[p*3+c] - caffeMeanRGB[c])
		}
	}
	want, err := ref.Logits(kerasref.CaffePreprocess(rgb, h, w), h, w)
	if err != nil {
		t.Fatal(err)
	}
	checkLogits(t, im.Model.Forward(x, false).Data, [][]float64{want}, 1e-3)
}
