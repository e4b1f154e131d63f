package kerasref

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// modelFile is the top level of a layers-model model.json.
type modelFile struct {
	Format          string          `json:"format"`
	ModelTopology   json.RawMessage `json:"modelTopology"`
	WeightsManifest []manifestGroup `json:"weightsManifest"`
}

type manifestGroup struct {
	Paths   []string         `json:"paths"`
	Weights []manifestWeight `json:"weights"`
}

type manifestWeight struct {
	Name         string          `json:"name"`
	Shape        []int           `json:"shape"`
	Dtype        string          `json:"dtype"`
	Quantization json.RawMessage `json:"quantization,omitempty"`
}

// rawLayer is one entry of the Keras config's layers list.
type rawLayer struct {
	Name         string          `json:"name"`
	ClassName    string          `json:"class_name"`
	Config       json.RawMessage `json:"config"`
	InboundNodes json.RawMessage `json:"inbound_nodes"`
}

// topology is the parsed layer graph, before weights are bound.
type topology struct {
	layers  []*node
	byName  map[string]*node
	input   *node
	output  *node
	ordered []*node // the layers the output depends on, inputs first
}

// node is one layer of the graph.
type node struct {
	name   string
	class  string
	inputs []string
	cfg    layerConfig
	op     op
}

// weight is one float32 tensor of the manifest, widened to float64.
type weight struct {
	name  string
	shape []int
	data  []float64
}

// Model is a parsed layers-model: its layer graph with weights bound.
type Model struct {
	topo    *topology
	inputC  int            // channels of the input layer; 0 if unknown
	lastUse map[string]int // index in topo.ordered of a tensor's last reader
}

// Load reads dir/model.json and the weight shards its manifest names
// (paths relative to dir) and binds every layer's weights.
func Load(dir string) (*Model, error) {
	path := filepath.Join(dir, "model.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kerasref: %w", err)
	}
	var mf modelFile
	if err := json.Unmarshal(raw, &mf); err != nil {
		return nil, fmt.Errorf("kerasref: %s: %w", path, err)
	}
	if mf.Format != "" && mf.Format != "layers-model" {
		return nil, fmt.Errorf("kerasref: %s: format %q is not \"layers-model\"", path, mf.Format)
	}
	topo, err := parseTopology(mf.ModelTopology)
	if err != nil {
		return nil, fmt.Errorf("kerasref: %s: %w", path, err)
	}
	weights, err := readWeights(dir, mf.WeightsManifest)
	if err != nil {
		return nil, fmt.Errorf("kerasref: %s: %w", path, err)
	}
	idx := newWeightIndex(weights)
	for _, n := range topo.ordered {
		o, err := buildOp(n, idx)
		if err != nil {
			return nil, fmt.Errorf("kerasref: %s: layer %q (%s): %w", path, n.name, n.class, err)
		}
		n.op = o
	}
	m := &Model{topo: topo, lastUse: map[string]int{}}
	if in := topo.input.cfg.inputShape(); len(in) > 0 && in[len(in)-1] != nil {
		m.inputC = *in[len(in)-1]
	}
	for i, n := range topo.ordered {
		for _, in := range n.inputs {
			m.lastUse[in] = i
		}
	}
	return m, nil
}

// parseTopology finds the layers list in modelTopology, which may hold it
// under model_config.config, config, or directly, and builds the graph.
func parseTopology(raw json.RawMessage) (*topology, error) {
	layers, inNames, outNames, err := findLayers(raw, 0)
	if err != nil {
		return nil, err
	}
	if len(layers) == 0 {
		return nil, fmt.Errorf("modelTopology: no layers")
	}
	t := &topology{byName: map[string]*node{}}
	sequential := inNames == nil && outNames == nil
	for i, rl := range layers {
		name := rl.Name
		var cfg layerConfig
		if len(rl.Config) > 0 {
			if err := json.Unmarshal(rl.Config, &cfg); err != nil {
				return nil, fmt.Errorf("layer %d %q (%s): config: %w", i, name, rl.ClassName, err)
			}
		}
		if name == "" {
			name = cfg.Name
		}
		if name == "" {
			return nil, fmt.Errorf("layer %d (%s): no name", i, rl.ClassName)
		}
		if _, dup := t.byName[name]; dup {
			return nil, fmt.Errorf("layer %q: duplicate name", name)
		}
		n := &node{name: name, class: rl.ClassName, cfg: cfg}
		ins, err := parseInbound(rl.InboundNodes)
		if err != nil {
			return nil, fmt.Errorf("layer %q (%s): inbound_nodes: %w", name, rl.ClassName, err)
		}
		if sequential && ins == nil && i > 0 {
			ins = []string{t.layers[i-1].name}
		}
		n.inputs = ins
		t.layers = append(t.layers, n)
		t.byName[name] = n
	}
	if sequential {
		if t.layers[0].class != "InputLayer" {
			// A Sequential model without an explicit InputLayer: its
			// first layer reads an implicit input.
			in := &node{name: "__input__", class: "InputLayer", cfg: t.layers[0].cfg}
			t.layers[0].inputs = []string{in.name}
			t.layers = append([]*node{in}, t.layers...)
			t.byName[in.name] = in
		}
		inNames = []string{t.layers[0].name}
		outNames = []string{t.layers[len(t.layers)-1].name}
	}
	if len(inNames) != 1 || len(outNames) != 1 {
		return nil, fmt.Errorf("model has %d inputs and %d outputs; only one of each is supported", len(inNames), len(outNames))
	}
	var ok bool
	if t.input, ok = t.byName[inNames[0]]; !ok {
		return nil, fmt.Errorf("input layer %q not found", inNames[0])
	}
	if t.input.class != "InputLayer" {
		return nil, fmt.Errorf("input layer %q is a %s, not an InputLayer", t.input.name, t.input.class)
	}
	if t.output, ok = t.byName[outNames[0]]; !ok {
		return nil, fmt.Errorf("output layer %q not found", outNames[0])
	}
	// Depth-first from the output: every layer after its inputs.
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n *node) error
	visit = func(n *node) error {
		switch state[n.name] {
		case 1:
			return fmt.Errorf("layer %q: cycle in the layer graph", n.name)
		case 2:
			return nil
		}
		state[n.name] = 1
		for _, in := range n.inputs {
			p, ok := t.byName[in]
			if !ok {
				return fmt.Errorf("layer %q (%s): input layer %q not found", n.name, n.class, in)
			}
			if err := visit(p); err != nil {
				return err
			}
		}
		state[n.name] = 2
		t.ordered = append(t.ordered, n)
		return nil
	}
	if err := visit(t.output); err != nil {
		return nil, err
	}
	if state[t.input.name] != 2 {
		return nil, fmt.Errorf("output layer %q does not depend on input layer %q", t.output.name, t.input.name)
	}
	for _, n := range t.ordered {
		if n.class == "InputLayer" && n != t.input {
			return nil, fmt.Errorf("layer %q: second InputLayer; only one input is supported", n.name)
		}
		if n.class != "InputLayer" && len(n.inputs) == 0 {
			return nil, fmt.Errorf("layer %q (%s): no inbound nodes", n.name, n.class)
		}
	}
	return t, nil
}

// findLayers digs the layers list and the input/output layer names out of
// a modelTopology, tolerating the placements the converters have used.
// Nil names (not empty) mean a Sequential model.
func findLayers(raw json.RawMessage, depth int) (layers []rawLayer, in, out []string, err error) {
	if depth > 4 {
		return nil, nil, nil, fmt.Errorf("modelTopology: no layers list found")
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, nil, fmt.Errorf("modelTopology: missing")
	}
	if raw[0] == '[' { // an old Sequential config: the layers list itself
		if err := json.Unmarshal(raw, &layers); err != nil {
			return nil, nil, nil, fmt.Errorf("modelTopology: layers: %w", err)
		}
		return layers, nil, nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, nil, nil, fmt.Errorf("modelTopology: %w", err)
	}
	if l, ok := obj["layers"]; ok {
		if err := json.Unmarshal(l, &layers); err != nil {
			return nil, nil, nil, fmt.Errorf("modelTopology: layers: %w", err)
		}
		if v, ok := obj["input_layers"]; ok {
			if in, err = parseLayerRefs(v); err != nil {
				return nil, nil, nil, fmt.Errorf("modelTopology: input_layers: %w", err)
			}
		}
		if v, ok := obj["output_layers"]; ok {
			if out, err = parseLayerRefs(v); err != nil {
				return nil, nil, nil, fmt.Errorf("modelTopology: output_layers: %w", err)
			}
		}
		if (in == nil) != (out == nil) {
			return nil, nil, nil, fmt.Errorf("modelTopology: input_layers and output_layers must both be present")
		}
		return layers, in, out, nil
	}
	for _, key := range []string{"model_config", "config"} {
		if v, ok := obj[key]; ok {
			return findLayers(v, depth+1)
		}
	}
	return nil, nil, nil, fmt.Errorf("modelTopology: no layers list found (looked in model_config.config, config)")
}

// parseLayerRefs reads [["name", 0, 0], ...] or a single ["name", 0, 0].
func parseLayerRefs(raw json.RawMessage) ([]string, error) {
	var many [][]json.RawMessage
	if err := json.Unmarshal(raw, &many); err != nil {
		var one []json.RawMessage
		if err2 := json.Unmarshal(raw, &one); err2 != nil {
			return nil, err
		}
		many = [][]json.RawMessage{one}
	}
	names := []string{}
	for _, ref := range many {
		name, err := parseRef(ref)
		if err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

// parseRef reads ["name", nodeIndex, tensorIndex, ...]; only node and
// tensor index 0 are supported (no shared layers, one output per layer).
func parseRef(ref []json.RawMessage) (string, error) {
	if len(ref) < 1 {
		return "", fmt.Errorf("empty layer reference")
	}
	var name string
	if err := json.Unmarshal(ref[0], &name); err != nil {
		return "", fmt.Errorf("layer reference %s: %w", ref[0], err)
	}
	for i := 1; i < len(ref) && i < 3; i++ {
		var k int
		if err := json.Unmarshal(ref[i], &k); err != nil {
			return "", fmt.Errorf("layer reference to %q: index %s: %w", name, ref[i], err)
		}
		if k != 0 {
			return "", fmt.Errorf("layer reference to %q: node/tensor index %d unsupported (shared layers and multi-output layers are not supported)", name, k)
		}
	}
	return name, nil
}

// parseInbound reads inbound_nodes [[["prev", 0, 0, {}], ...]]: the input
// layer names of the layer's one call. Nil when there are none.
func parseInbound(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var nodes [][][]json.RawMessage
	if err := json.Unmarshal(raw, &nodes); err != nil {
		return nil, fmt.Errorf("unsupported format (want [[[\"layer\", 0, 0, {}], ...]]): %w", err)
	}
	switch len(nodes) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("layer called %d times; shared layers are not supported", len(nodes))
	}
	var names []string
	for _, ref := range nodes[0] {
		name, err := parseRef(ref)
		if err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

// readWeights reads every group's shards and slices out its weights.
func readWeights(dir string, groups []manifestGroup) (map[string]*weight, error) {
	out := map[string]*weight{}
	for gi, g := range groups {
		var stream []byte
		type span struct {
			path       string
			start, end int
		}
		var spans []span
		for _, p := range g.Paths {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
			if err != nil {
				return nil, fmt.Errorf("weights group %d: shard %q: %w", gi+1, p, err)
			}
			spans = append(spans, span{p, len(stream), len(stream) + len(b)})
			stream = append(stream, b...)
		}
		off := 0
		for _, mw := range g.Weights {
			if mw.Dtype != "float32" {
				return nil, fmt.Errorf("weight %q: dtype %q unsupported (only float32)", mw.Name, mw.Dtype)
			}
			if q := bytes.TrimSpace(mw.Quantization); len(q) > 0 && string(q) != "null" {
				return nil, fmt.Errorf("weight %q: quantized weights are not supported", mw.Name)
			}
			n := 1
			for _, d := range mw.Shape {
				if d < 0 {
					return nil, fmt.Errorf("weight %q: bad shape %v", mw.Name, mw.Shape)
				}
				n *= d
			}
			end := off + 4*n
			if end > len(stream) {
				if len(spans) == 0 {
					return nil, fmt.Errorf("weights group %d: weight %q needs %d bytes but the group names no shards", gi+1, mw.Name, end)
				}
				last := spans[len(spans)-1]
				return nil, fmt.Errorf("weights group %d: shard %q too short: weight %q needs bytes up to offset %d of the group's stream, but its %d shards hold only %d bytes",
					gi+1, last.path, mw.Name, end, len(spans), len(stream))
			}
			w := &weight{name: mw.Name, shape: append([]int(nil), mw.Shape...), data: make([]float64, n)}
			for i := range w.data {
				w.data[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(stream[off+4*i:])))
			}
			off = end
			if _, dup := out[mw.Name]; dup {
				return nil, fmt.Errorf("weight %q: listed twice in weightsManifest", mw.Name)
			}
			out[mw.Name] = w
		}
	}
	return out, nil
}

// weightIndex finds a layer's weights by manifest name.
type weightIndex struct {
	all map[string]*weight // by manifest name without ":0"
}

func newWeightIndex(ws map[string]*weight) *weightIndex {
	idx := &weightIndex{all: map[string]*weight{}}
	for name, w := range ws {
		idx.all[strings.TrimSuffix(name, ":0")] = w
	}
	return idx
}

// get returns the weight "<layer>/<kind>", exact or after a scope prefix,
// checking its shape when want is not nil.
func (idx *weightIndex) get(layer, kind string, want []int) (*weight, error) {
	key := layer + "/" + kind
	w, ok := idx.all[key]
	if !ok {
		var found []*weight
		for name, c := range idx.all {
			if strings.HasSuffix(name, "/"+key) {
				found = append(found, c)
			}
		}
		switch len(found) {
		case 0:
			return nil, fmt.Errorf("weight %q not found in weightsManifest", key)
		case 1:
			w = found[0]
		default:
			return nil, fmt.Errorf("weight %q: %d manifest names end in /%s", key, len(found), key)
		}
	}
	if want != nil && !equalInts(w.shape, want) {
		return nil, fmt.Errorf("weight %q has shape %v, want %v", w.name, w.shape, want)
	}
	return w, nil
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
