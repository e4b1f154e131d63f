package kerasref

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// wspec is one weight a test model's manifest lists.
type wspec struct {
	name  string
	shape []int
	dtype string // "" means float32
	data  []float64
}

// testModel is a hand-written functional model.json plus its weights.
type testModel struct {
	layers  []map[string]any
	input   string
	output  string
	weights []wspec
}

func layerJSON(name, class string, cfg map[string]any, inputs ...string) map[string]any {
	if cfg == nil {
		cfg = map[string]any{}
	}
	cfg["name"] = name
	var inbound []any
	if len(inputs) > 0 {
		var refs []any
		for _, in := range inputs {
			refs = append(refs, []any{in, 0, 0, map[string]any{}})
		}
		inbound = []any{refs}
	} else {
		inbound = []any{}
	}
	return map[string]any{"name": name, "class_name": class, "config": cfg, "inbound_nodes": inbound}
}

// write writes dir/model.json and the weights split into shards files.
func (tm *testModel) write(t *testing.T, dir string, shards int) {
	t.Helper()
	var stream []byte
	var mws []map[string]any
	for _, w := range tm.weights {
		dt := w.dtype
		if dt == "" {
			dt = "float32"
		}
		mws = append(mws, map[string]any{"name": w.name, "shape": w.shape, "dtype": dt})
		for _, v := range w.data {
			stream = binary.LittleEndian.AppendUint32(stream, math.Float32bits(float32(v)))
		}
	}
	per := (len(stream) + shards - 1) / shards
	var paths []string
	for i := range shards {
		p := fmt.Sprintf("group1-shard%dof%d.bin", i+1, shards)
		paths = append(paths, p)
		lo, hi := min(i*per, len(stream)), min((i+1)*per, len(stream))
		if err := os.WriteFile(filepath.Join(dir, p), stream[lo:hi], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mj := map[string]any{
		"format":      "layers-model",
		"generatedBy": "kerasref test",
		"modelTopology": map[string]any{
			"keras_version": "2.2.4-tf",
			"backend":       "tensorflow",
			"model_config": map[string]any{
				"class_name": "Model",
				"config": map[string]any{
					"name":          "tiny",
					"layers":        tm.layers,
					"input_layers":  []any{[]any{tm.input, 0, 0}},
					"output_layers": []any{[]any{tm.output, 0, 0}},
				},
			},
		},
		"weightsManifest": []any{map[string]any{"paths": paths, "weights": mws}},
	}
	b, err := json.MarshalIndent(mj, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// randF32 returns n values exactly representable in float32.
func randF32(r *rand.Rand, n int, lo, hi float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(float32(lo + (hi-lo)*r.Float64()))
	}
	return v
}

// img is a naive H×W×C image for the independent reference code below.
type img [][][]float64

func toImg(d []float64, h, w, c int) img {
	m := make(img, h)
	for y := range m {
		m[y] = make([][]float64, w)
		for x := range m[y] {
			m[y][x] = append([]float64(nil), d[(y*w+x)*c:(y*w+x+1)*c]...)
		}
	}
	return m
}

func (m img) dims() (h, w, c int) { return len(m), len(m[0]), len(m[0][0]) }

// naivePad pads with the constant v.
func naivePad(m img, t, b, l, r int, v float64) img {
	h, w, c := m.dims()
	out := make(img, h+t+b)
	for y := range out {
		out[y] = make([][]float64, w+l+r)
		for x := range out[y] {
			out[y][x] = make([]float64, c)
			sy, sx := y-t, x-l
			for k := range c {
				if sy >= 0 && sy < h && sx >= 0 && sx < w {
					out[y][x][k] = m[sy][sx][k]
				} else {
					out[y][x][k] = v
				}
			}
		}
	}
	return out
}

// naiveConvValid is a valid-padding strided convolution; kernel is HWIO flat.
func naiveConvValid(m img, kernel []float64, kh, kw, cout, s int, bias []float64) img {
	h, w, cin := m.dims()
	oh, ow := (h-kh)/s+1, (w-kw)/s+1
	out := make(img, oh)
	for oy := range oh {
		out[oy] = make([][]float64, ow)
		for ox := range ow {
			out[oy][ox] = make([]float64, cout)
			for co := range cout {
				sum := 0.0
				if bias != nil {
					sum = bias[co]
				}
				for ky := range kh {
					for kx := range kw {
						for ci := range cin {
							sum += m[oy*s+ky][ox*s+kx][ci] * kernel[((ky*kw+kx)*cin+ci)*cout+co]
						}
					}
				}
				out[oy][ox][co] = sum
			}
		}
	}
	return out
}

// tfSamePads is TensorFlow's "same" rule written out: total padding and
// its split, the extra on the bottom/right.
func tfSamePads(size, k, s int) (before, after int) {
	out := int(math.Ceil(float64(size) / float64(s)))
	total := (out-1)*s + k - size
	if total < 0 {
		total = 0
	}
	return total / 2, total - total/2
}

func (m img) flat() []float64 {
	var d []float64
	for _, row := range m {
		for _, px := range row {
			d = append(d, px...)
		}
	}
	return d
}

func closeSlices(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(got[i] - want[i]); !(d <= tol*math.Max(1, math.Abs(want[i]))) {
			t.Fatalf("%s[%d] = %.17g, want %.17g (diff %.3g)", what, i, got[i], want[i], d)
		}
	}
}
