package kerasref

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyModel: ZeroPadding2D → Conv2D(same, stride 2, bias) → BN → relu →
// MaxPool(same) → Add with a 1×1 stride-2 conv shortcut from the padded
// input → GlobalAveragePooling2D → Dense(softmax). Input 5×6×2.
func tinyModel(seed uint64) *testModel {
	r := rand.New(rand.NewPCG(seed, 1))
	tm := &testModel{input: "in", output: "fc"}
	tm.layers = []map[string]any{
		layerJSON("in", "InputLayer", map[string]any{"batch_input_shape": []any{nil, 224, 224, 2}, "dtype": "float32"}),
		layerJSON("pad", "ZeroPadding2D", map[string]any{"padding": [][]int{{1, 0}, {0, 1}}, "data_format": "channels_last"}, "in"),
		layerJSON("c1", "Conv2D", map[string]any{"filters": 3, "kernel_size": []int{3, 3}, "strides": []int{2, 2}, "padding": "same",
			"dilation_rate": []int{1, 1}, "activation": "linear", "use_bias": true, "data_format": "channels_last"}, "pad"),
		layerJSON("bn1", "BatchNormalization", map[string]any{"axis": []int{3}, "epsilon": 0.01, "center": true, "scale": true}, "c1"),
		layerJSON("r1", "Activation", map[string]any{"activation": "relu"}, "bn1"),
		layerJSON("p1", "MaxPooling2D", map[string]any{"pool_size": []int{3, 3}, "strides": []int{1, 1}, "padding": "same"}, "r1"),
		layerJSON("sc", "Conv2D", map[string]any{"filters": 3, "kernel_size": 1, "strides": 2, "padding": "valid",
			"activation": "linear", "use_bias": false}, "pad"),
		layerJSON("add", "Add", nil, "p1", "sc"),
		layerJSON("gap", "GlobalAveragePooling2D", nil, "add"),
		layerJSON("fc", "Dense", map[string]any{"units": 4, "activation": "softmax", "use_bias": true}, "gap"),
	}
	tm.weights = []wspec{
		{name: "c1/kernel", shape: []int{3, 3, 2, 3}, data: randF32(r, 54, -1, 1)},
		{name: "c1/bias", shape: []int{3}, data: randF32(r, 3, -0.5, 0.5)},
		{name: "bn1/gamma", shape: []int{3}, data: randF32(r, 3, 0.5, 1.5)},
		{name: "bn1/beta", shape: []int{3}, data: randF32(r, 3, -0.5, 0.5)},
		{name: "bn1/moving_mean", shape: []int{3}, data: randF32(r, 3, -0.5, 0.5)},
		{name: "bn1/moving_variance", shape: []int{3}, data: randF32(r, 3, 0.5, 2)},
		{name: "sc/kernel", shape: []int{1, 1, 2, 3}, data: randF32(r, 6, -1, 1)},
		{name: "fc/kernel", shape: []int{3, 4}, data: randF32(r, 12, -1, 1)},
		{name: "fc/bias", shape: []int{4}, data: randF32(r, 4, -0.5, 0.5)},
	}
	return tm
}

func (tm *testModel) weight(name string) []float64 {
	for _, w := range tm.weights {
		if w.name == name {
			return w.data
		}
	}
	panic(name)
}

// tinyExpected computes the tiny model's logits with the naive code.
func tinyExpected(tm *testModel, x []float64) []float64 {
	in := toImg(x, 5, 6, 2)
	pad := naivePad(in, 1, 0, 0, 1, 0)                                                                           // 6×7
	t, b := tfSamePads(6, 3, 2)                                                                                  // 0, 1: the extra row at the bottom
	l, r := tfSamePads(7, 3, 2)                                                                                  // 1, 1
	c1 := naiveConvValid(naivePad(pad, t, b, l, r, 0), tm.weight("c1/kernel"), 3, 3, 3, 2, tm.weight("c1/bias")) // 3×4
	g, be, mu, va := tm.weight("bn1/gamma"), tm.weight("bn1/beta"), tm.weight("bn1/moving_mean"), tm.weight("bn1/moving_variance")
	for _, row := range c1 {
		for _, px := range row {
			for k := range px {
				px[k] = g[k]*(px[k]-mu[k])/math.Sqrt(va[k]+0.01) + be[k]
				px[k] = math.Max(px[k], 0)
			}
		}
	}
	pt, pb := tfSamePads(3, 3, 1)
	pl, pr := tfSamePads(4, 3, 1)
	padded := naivePad(c1, pt, pb, pl, pr, math.Inf(-1))
	sc := naiveConvValid(pad, tm.weight("sc/kernel"), 1, 1, 3, 2, nil) // 3×4
	sum := make([]float64, 3)
	for y := range 3 {
		for x := range 4 {
			for k := range 3 {
				m := math.Inf(-1)
				for dy := range 3 {
					for dx := range 3 {
						m = math.Max(m, padded[y+dy][x+dx][k])
					}
				}
				sum[k] += m + sc[y][x][k]
			}
		}
	}
	fk, fb := tm.weight("fc/kernel"), tm.weight("fc/bias")
	logits := make([]float64, 4)
	for j := range 4 {
		logits[j] = fb[j]
		for i := range 3 {
			logits[j] += sum[i] / 12 * fk[i*4+j]
		}
	}
	return logits
}

func TestTinyModel(t *testing.T) {
	tm := tinyModel(1)
	dir := t.TempDir()
	tm.write(t, dir, 3) // weights span shard boundaries
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(2, 2))
	for trial := range 3 {
		x := randF32(r, 5*6*2, -2, 2)
		x0 := append([]float64(nil), x...)
		want := tinyExpected(tm, x)
		logits, err := m.Logits(x, 5, 6)
		if err != nil {
			t.Fatal(err)
		}
		closeSlices(t, "logits", logits, want, 1e-12)
		probs, err := m.Run(x, 5, 6)
		if err != nil {
			t.Fatal(err)
		}
		closeSlices(t, "probs", probs, Softmax(want), 1e-12)
		for i := range x {
			if x[i] != x0[i] {
				t.Fatalf("trial %d: Run modified its input", trial)
			}
		}
	}
	if _, err := m.Run(make([]float64, 5*6*3), 5, 6); err == nil || !strings.Contains(err.Error(), "channels") {
		t.Errorf("3-channel input: err = %v, want a channels error", err)
	}
	if _, err := m.Run(make([]float64, 7), 5, 6); err == nil {
		t.Error("bad input length: no error")
	}
}

// A manifest name with a scope prefix and a ":0" suffix still resolves.
func TestWeightNamePrefix(t *testing.T) {
	tm := tinyModel(3)
	dir := t.TempDir()
	tm.write(t, dir, 1)
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tm.weights {
		tm.weights[i].name = "model_1/" + tm.weights[i].name + ":0"
	}
	dir2 := t.TempDir()
	tm.write(t, dir2, 1)
	m2, err := Load(dir2)
	if err != nil {
		t.Fatal(err)
	}
	x := randF32(rand.New(rand.NewPCG(4, 4)), 60, -1, 1)
	a, _ := m.Run(x, 5, 6)
	b, err := m2.Run(x, 5, 6)
	if err != nil {
		t.Fatal(err)
	}
	closeSlices(t, "prefixed", b, a, 0)
}

// Conv2D "same" padding with stride 2 on even and odd sizes, odd and even
// kernels, against an explicitly padded valid convolution.
func TestConvSameStride2(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, tc := range []struct{ h, w, k int }{
		{6, 6, 3}, {7, 7, 3}, {6, 7, 3}, {8, 5, 4}, {7, 6, 4}, {6, 6, 1}, {5, 5, 1}, {6, 6, 5}, {3, 3, 7},
	} {
		const cin, cout = 3, 2
		x := randF32(r, tc.h*tc.w*cin, -1, 1)
		kern := randF32(r, tc.k*tc.k*cin*cout, -1, 1)
		bias := randF32(r, cout, -1, 1)
		o := &convOp{kh: tc.k, kw: tc.k, cin: cin, cout: cout, sh: 2, sw: 2, same: true, kernel: kern, bias: bias}
		got, err := o.apply([]*tensor{{h: tc.h, w: tc.w, c: cin, d: x}}, false)
		if err != nil {
			t.Fatal(err)
		}
		pt, pb := tfSamePads(tc.h, tc.k, 2)
		pl, pr := tfSamePads(tc.w, tc.k, 2)
		want := naiveConvValid(naivePad(toImg(x, tc.h, tc.w, cin), pt, pb, pl, pr, 0), kern, tc.k, tc.k, cout, 2, bias)
		wh, ww, _ := want.dims()
		if got.h != wh || got.w != ww || wh != (tc.h+1)/2 || ww != (tc.w+1)/2 {
			t.Fatalf("%v: output %d×%d, want %d×%d", tc, got.h, got.w, wh, ww)
		}
		closeSlices(t, "conv", got.d, want.flat(), 1e-13)
	}
}

// MaxPooling2D "same" pads with -inf, not 0.
func TestMaxPoolSameNegative(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	for _, tc := range []struct{ h, w, k, s int }{{5, 5, 2, 2}, {6, 6, 3, 2}, {5, 4, 3, 1}} {
		x := randF32(r, tc.h*tc.w*2, -3, -1) // all negative
		o := &maxPoolOp{tc.k, tc.k, tc.s, tc.s, true}
		got, err := o.apply([]*tensor{{h: tc.h, w: tc.w, c: 2, d: x}}, false)
		if err != nil {
			t.Fatal(err)
		}
		pt, pb := tfSamePads(tc.h, tc.k, tc.s)
		pl, pr := tfSamePads(tc.w, tc.k, tc.s)
		p := naivePad(toImg(x, tc.h, tc.w, 2), pt, pb, pl, pr, math.Inf(-1))
		ph, pw, _ := p.dims()
		var want []float64
		for y := 0; y+tc.k <= ph; y += tc.s {
			for xx := 0; xx+tc.k <= pw; xx += tc.s {
				for c := range 2 {
					m := math.Inf(-1)
					for dy := range tc.k {
						for dx := range tc.k {
							m = math.Max(m, p[y+dy][xx+dx][c])
						}
					}
					want = append(want, m)
				}
			}
		}
		closeSlices(t, "maxpool", got.d, want, 0)
		for _, v := range got.d {
			if v >= 0 {
				t.Fatalf("%v: max over negative inputs is %v", tc, v)
			}
		}
	}
}

func TestZeroPaddingForms(t *testing.T) {
	for _, tc := range []struct {
		raw        string
		t, b, l, r int
	}{
		{"2", 2, 2, 2, 2}, {"[1, 3]", 1, 1, 3, 3}, {"[[1, 2], [3, 0]]", 1, 2, 3, 0}, {"", 1, 1, 1, 1},
	} {
		pt, pb, pl, pr, err := parsePadding2D([]byte(tc.raw))
		if err != nil || pt != tc.t || pb != tc.b || pl != tc.l || pr != tc.r {
			t.Errorf("padding %q: %d %d %d %d %v, want %d %d %d %d", tc.raw, pt, pb, pl, pr, err, tc.t, tc.b, tc.l, tc.r)
		}
	}
	if _, _, _, _, err := parsePadding2D([]byte(`"same"`)); err == nil {
		t.Error(`padding "same": no error`)
	}
	// Applied: [[1, 2], [3, 0]] on a 1×1×1 input puts it at (1, 3) of 4×4.
	o := &padOp{1, 2, 3, 0}
	out, _ := o.apply([]*tensor{{h: 1, w: 1, c: 1, d: []float64{7}}}, false)
	if out.h != 4 || out.w != 4 || out.d[1*4+3] != 7 {
		t.Errorf("pad: %d×%d %v", out.h, out.w, out.d)
	}
}

func TestCaffePreprocess(t *testing.T) {
	rgb := []float64{10, 20, 30, 255, 0, 128}
	got := CaffePreprocess(rgb, 1, 2)
	want := []float64{30 - 103.939, 20 - 116.779, 10 - 123.68, 128 - 103.939, 0 - 116.779, 255 - 123.68}
	closeSlices(t, "caffe", got, want, 1e-15)
	if rgb[0] != 10 || rgb[2] != 30 {
		t.Error("CaffePreprocess modified its input")
	}
}

// loadErr writes tm (after mutate, which may also damage dir) and returns
// Load's error.
func loadErr(t *testing.T, mutate func(tm *testModel), damage func(dir string)) error {
	t.Helper()
	tm := tinyModel(7)
	if mutate != nil {
		mutate(tm)
	}
	dir := t.TempDir()
	tm.write(t, dir, 2)
	if damage != nil {
		damage(dir)
	}
	_, err := Load(dir)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	return err
}

func wantSubstrings(t *testing.T, err error, subs ...string) {
	t.Helper()
	t.Log(err)
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	t.Run("MissingShard", func(t *testing.T) {
		err := loadErr(t, nil, func(dir string) { os.Remove(filepath.Join(dir, "group1-shard2of2.bin")) })
		wantSubstrings(t, err, "group1-shard2of2.bin")
	})
	t.Run("TruncatedShard", func(t *testing.T) {
		err := loadErr(t, nil, func(dir string) {
			p := filepath.Join(dir, "group1-shard2of2.bin")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-6], 0o644)
		})
		wantSubstrings(t, err, "group1-shard2of2.bin", "too short", "fc/bias")
	})
	t.Run("UnknownLayerClass", func(t *testing.T) {
		err := loadErr(t, func(tm *testModel) { tm.layers[4]["class_name"] = "LeakyReLU" }, nil)
		wantSubstrings(t, err, `"r1"`, "LeakyReLU")
	})
	t.Run("DtypeInt32", func(t *testing.T) {
		err := loadErr(t, func(tm *testModel) { tm.weights[4].dtype = "int32" }, nil)
		wantSubstrings(t, err, "bn1/moving_mean", "int32")
	})
	t.Run("MissingWeight", func(t *testing.T) {
		err := loadErr(t, func(tm *testModel) { tm.weights = append(tm.weights[:5], tm.weights[6:]...) }, nil)
		wantSubstrings(t, err, `"bn1"`, "bn1/moving_variance")
	})
	t.Run("WrongWeightShape", func(t *testing.T) {
		err := loadErr(t, func(tm *testModel) { tm.weights[1].shape = []int{1, 3} }, nil)
		wantSubstrings(t, err, `"c1"`, "c1/bias")
	})
	t.Run("Dilation", func(t *testing.T) {
		err := loadErr(t, func(tm *testModel) { tm.layers[2]["config"].(map[string]any)["dilation_rate"] = []int{2, 2} }, nil)
		wantSubstrings(t, err, `"c1"`, "dilation")
	})
	t.Run("UnknownInput", func(t *testing.T) {
		err := loadErr(t, func(tm *testModel) { tm.layers[7] = layerJSON("add", "Add", nil, "p1", "nope") }, nil)
		wantSubstrings(t, err, `"add"`, `"nope"`)
	})
	t.Run("MissingModelJSON", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Load(dir)
		if err == nil {
			t.Fatal("no error")
		}
		wantSubstrings(t, err, "model.json")
	})
	t.Run("BadJSON", func(t *testing.T) {
		err := loadErr(t, nil, func(dir string) { os.WriteFile(filepath.Join(dir, "model.json"), []byte("{"), 0o644) })
		wantSubstrings(t, err, "model.json")
	})
}

// WriteSynthetic is deterministic in seed, independent of the shard
// count, and keeps the manifest's names, shapes and order.
func TestWriteSyntheticDeterministic(t *testing.T) {
	tm := tinyModel(8)
	src := t.TempDir()
	tm.write(t, src, 1)
	mj, err := os.ReadFile(filepath.Join(src, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	stream := func(seed uint64, shards int) ([]byte, *Model) {
		dir := t.TempDir()
		if err := WriteSynthetic(dir, mj, seed, shards); err != nil {
			t.Fatal(err)
		}
		var all []byte
		for i := range shards {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("group1-shard%dof%d.bin", i+1, shards)))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		m, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		return all, m
	}
	a, ma := stream(11, 1)
	b, _ := stream(11, 4)
	c, _ := stream(12, 2)
	if !bytes.Equal(a, b) {
		t.Error("same seed, different shard counts: different weights")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds: same weights")
	}
	if len(a) != 4*(54+3+4*3+6+12+4) {
		t.Errorf("stream %d bytes", len(a))
	}
	if _, err := ma.Run(make([]float64, 60), 5, 6); err != nil {
		t.Fatal(err)
	}
	if err := WriteSynthetic(t.TempDir(), mj, 1, 0); err == nil {
		t.Error("shards 0: no error")
	}
}

// modelTopology may hold the Keras config under model_config, directly,
// or under config; a Sequential list without inbound_nodes chains.
func TestTopologyPlacements(t *testing.T) {
	tm := tinyModel(1)
	inner := map[string]any{
		"class_name": "Model",
		"config": map[string]any{
			"name": "tiny", "layers": tm.layers,
			"input_layers": []any{[]any{"in", 0, 0}}, "output_layers": []any{[]any{"fc", 0, 0}},
		},
	}
	seq := []map[string]any{
		{"class_name": "Dense", "config": map[string]any{"name": "d1", "units": 3, "batch_input_shape": []any{nil, 4}}},
		{"class_name": "Activation", "config": map[string]any{"name": "a1", "activation": "relu"}},
	}
	for name, topo := range map[string]any{
		"model_config": map[string]any{"keras_version": "2.2.4", "model_config": inner},
		"direct":       inner,
		"config":       map[string]any{"config": inner["config"]},
		"sequential":   map[string]any{"model_config": map[string]any{"class_name": "Sequential", "config": map[string]any{"name": "s", "layers": seq}}},
		"old-seq-list": map[string]any{"model_config": map[string]any{"class_name": "Sequential", "config": seq}},
	} {
		raw, _ := json.Marshal(topo)
		tp, err := parseTopology(raw)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.Contains(name, "seq") {
			if tp.output.name != "a1" || len(tp.ordered) != 3 || tp.ordered[1].name != "d1" {
				t.Errorf("%s: output %q, %d layers", name, tp.output.name, len(tp.ordered))
			}
		} else if tp.output.name != "fc" || len(tp.ordered) != 10 {
			t.Errorf("%s: output %q, %d layers", name, tp.output.name, len(tp.ordered))
		}
	}
}

// Logits needs an output layer with an activation to strip.
func TestLogitsOutputLayer(t *testing.T) {
	tm := tinyModel(1)
	tm.output = "gap"
	dir := t.TempDir()
	tm.write(t, dir, 1)
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float64, 60)
	if _, err := m.Run(x, 5, 6); err != nil {
		t.Fatal(err)
	}
	_, err = m.Logits(x, 5, 6)
	if err == nil {
		t.Fatal("Logits with a GlobalAveragePooling2D output: no error")
	}
	wantSubstrings(t, err, `"gap"`)

	// An Activation(softmax) output: Logits is its input.
	tm = tinyModel(1)
	tm.layers[9]["config"].(map[string]any)["activation"] = "linear"
	tm.layers = append(tm.layers, layerJSON("sm", "Activation", map[string]any{"activation": "softmax"}, "fc"))
	tm.output = "sm"
	dir = t.TempDir()
	tm.write(t, dir, 1)
	if m, err = Load(dir); err != nil {
		t.Fatal(err)
	}
	x = randF32(rand.New(rand.NewPCG(1, 1)), 60, -1, 1)
	lg, err := m.Logits(x, 5, 6)
	if err != nil {
		t.Fatal(err)
	}
	pr, _ := m.Run(x, 5, 6)
	closeSlices(t, "activation output", lg, tinyExpected(tm, x), 1e-12)
	closeSlices(t, "activation output probs", pr, Softmax(lg), 1e-12)
}
