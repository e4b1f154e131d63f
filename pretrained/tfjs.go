package pretrained

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// maxModelJSON caps the size of a model.json (the ResNet-50 one is 109 KB).
const maxModelJSON = 64 << 20

// tfjsModel is a parsed TensorFlow.js layers-model: the Keras graph and the
// manifest of its weights.
type tfjsModel struct {
	path   string // of model.json
	layers []kerasLayer
	byName map[string]*kerasLayer
	inputs []string // input layer names
	output string   // the output layer's name
	groups []tfjsGroup
}

type kerasLayer struct {
	Name      string          `json:"name"`
	ClassName string          `json:"class_name"`
	Config    json.RawMessage `json:"config"`
	// InboundNodes is [[[layer, node, tensor, kwargs], ...]]: one node per
	// call of the layer (a layer called once has one).
	InboundNodes [][][]any `json:"inbound_nodes"`
	inbound      []string
}

type tfjsGroup struct {
	Paths   []string         `json:"paths"`
	Weights []tfjsWeightSpec `json:"weights"`
}

type tfjsWeightSpec struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
	DType string `json:"dtype"`
}

// tfjsTensor is one weight read from the shards.
type tfjsTensor struct {
	Shape []int
	Data  []float32
}

// readTFJS parses dir/model.json (format "layers-model").
func readTFJS(dir string) (*tfjsModel, error) {
	path := filepath.Join(dir, "model.json")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tfjs: %w (expected a TensorFlow.js layers-model folder holding model.json and its weight shards)", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxModelJSON+1))
	if err != nil {
		return nil, fmt.Errorf("tfjs: %s: %w", path, err)
	}
	if len(b) > maxModelJSON {
		return nil, fmt.Errorf("tfjs: %s: larger than %d MiB: not a model.json", path, maxModelJSON>>20)
	}
	var raw struct {
		Format        string `json:"format"`
		ModelTopology struct {
			ModelConfig *struct {
				ClassName string          `json:"class_name"`
				Config    json.RawMessage `json:"config"`
			} `json:"model_config"`
			ClassName string          `json:"class_name"`
			Config    json.RawMessage `json:"config"`
		} `json:"modelTopology"`
		WeightsManifest []tfjsGroup `json:"weightsManifest"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("tfjs: %s: %w", path, err)
	}
	if raw.Format != "layers-model" {
		return nil, fmt.Errorf("tfjs: %s: format %q, want \"layers-model\" (a Keras model converted by tensorflowjs_converter; graph models are not supported)", path, raw.Format)
	}
	topo := raw.ModelTopology.Config
	class := raw.ModelTopology.ClassName
	if mc := raw.ModelTopology.ModelConfig; mc != nil {
		topo, class = mc.Config, mc.ClassName
	}
	if class != "Model" && class != "Functional" {
		return nil, fmt.Errorf("tfjs: %s: modelTopology is a %q, want a functional Keras Model", path, class)
	}
	var cfg struct {
		Layers       []kerasLayer `json:"layers"`
		InputLayers  [][]any      `json:"input_layers"`
		OutputLayers [][]any      `json:"output_layers"`
	}
	if err := json.Unmarshal(topo, &cfg); err != nil {
		return nil, fmt.Errorf("tfjs: %s: modelTopology: %w", path, err)
	}
	m := &tfjsModel{path: path, layers: cfg.Layers, byName: map[string]*kerasLayer{}, groups: raw.WeightsManifest}
	for i := range m.layers {
		l := &m.layers[i]
		if l.Name == "" {
			return nil, fmt.Errorf("tfjs: %s: layer %d has no name", path, i)
		}
		if m.byName[l.Name] != nil {
			return nil, fmt.Errorf("tfjs: %s: two layers named %q", path, l.Name)
		}
		switch len(l.InboundNodes) {
		case 0:
		case 1:
			for _, in := range l.InboundNodes[0] {
				name, ok := firstString(in)
				if !ok {
					return nil, fmt.Errorf("tfjs: %s: layer %s: malformed inbound node %v", path, l.Name, in)
				}
				l.inbound = append(l.inbound, name)
			}
		default:
			return nil, fmt.Errorf("tfjs: %s: layer %s is called %d times (shared layers are not supported)", path, l.Name, len(l.InboundNodes))
		}
		m.byName[l.Name] = l
	}
	for _, l := range m.layers {
		for _, in := range l.inbound {
			if m.byName[in] == nil {
				return nil, fmt.Errorf("tfjs: %s: layer %s takes the output of %q, which is not a layer of the model", path, l.Name, in)
			}
		}
	}
	for _, in := range cfg.InputLayers {
		if name, ok := firstString(in); ok {
			m.inputs = append(m.inputs, name)
		}
	}
	if len(cfg.OutputLayers) != 1 {
		return nil, fmt.Errorf("tfjs: %s: %d outputs, want one", path, len(cfg.OutputLayers))
	}
	out, ok := firstString(cfg.OutputLayers[0])
	if !ok || m.byName[out] == nil {
		return nil, fmt.Errorf("tfjs: %s: output layer %v is not a layer of the model", path, cfg.OutputLayers[0])
	}
	m.output = out
	return m, nil
}

func firstString(v []any) (string, bool) {
	if len(v) == 0 {
		return "", false
	}
	s, ok := v[0].(string)
	return s, ok && s != ""
}

// readWeights reads every weight of the manifest from the shards beside
// model.json: per group, the little-endian float32 values of its weights in
// manifest order, across its shard files concatenated.
func (m *tfjsModel) readWeights() (map[string]tfjsTensor, error) {
	dir := filepath.Dir(m.path)
	out := map[string]tfjsTensor{}
	if len(m.groups) == 0 {
		return nil, fmt.Errorf("tfjs: %s: weightsManifest is empty", m.path)
	}
	for gi, g := range m.groups {
		var need int64
		for _, w := range g.Weights {
			if w.DType != "float32" {
				return nil, fmt.Errorf("tfjs: %s: weight %s has dtype %q, want float32 (quantised or other dtypes are not supported)", m.path, w.Name, w.DType)
			}
			n := int64(1)
			for _, d := range w.Shape {
				if d < 0 || (d > 0 && n > math.MaxInt32/int64(d)) {
					return nil, fmt.Errorf("tfjs: %s: weight %s has shape %v", m.path, w.Name, w.Shape)
				}
				n *= int64(d)
			}
			need += 4 * n
		}
		buf := make([]byte, 0, need)
		for _, p := range g.Paths {
			if p == "" || filepath.IsAbs(p) || strings.Contains(p, "..") || strings.ContainsAny(p, `/\`) {
				return nil, fmt.Errorf("tfjs: %s: weight shard path %q: want a file name beside model.json", m.path, p)
			}
			sp := filepath.Join(dir, p)
			st, err := os.Stat(sp)
			if err != nil {
				return nil, fmt.Errorf("tfjs: weight shard %s (group %d of %s): %w", sp, gi+1, m.path, err)
			}
			if int64(len(buf))+st.Size() > need {
				return nil, fmt.Errorf("tfjs: weight shard %s: the group's shards hold more than the %d bytes its %d weights need", sp, need, len(g.Weights))
			}
			b, err := os.ReadFile(sp)
			if err != nil {
				return nil, fmt.Errorf("tfjs: weight shard %s: %w", sp, err)
			}
			buf = append(buf, b...)
		}
		if int64(len(buf)) != need {
			return nil, fmt.Errorf("tfjs: %s: group %d: its shards %v hold %d bytes, its weights need %d (a shard is truncated or missing)", m.path, gi+1, g.Paths, len(buf), need)
		}
		off := 0
		for _, w := range g.Weights {
			n := 1
			for _, d := range w.Shape {
				n *= d
			}
			t := tfjsTensor{Shape: append([]int(nil), w.Shape...), Data: make([]float32, n)}
			for i := range t.Data {
				t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[off+4*i:]))
			}
			off += 4 * n
			if _, dup := out[w.Name]; dup {
				return nil, fmt.Errorf("tfjs: %s: weight %s listed twice", m.path, w.Name)
			}
			out[w.Name] = t
		}
	}
	return out, nil
}

// layerWeight finds weight "<layer>/<name>" of a layer, allowing a scope
// prefix before the layer name ("model/conv1/kernel").
func layerWeight(ws map[string]tfjsTensor, layer, name string) (tfjsTensor, string, bool) {
	key := layer + "/" + name
	if t, ok := ws[key]; ok {
		return t, key, true
	}
	for k, t := range ws {
		if strings.HasSuffix(k, "/"+key) {
			return t, k, true
		}
	}
	return tfjsTensor{}, key, false
}
