package pretrained

import (
	"encoding/json"
	"fmt"
	"strings"
)

// kop is one operation of a Keras graph in dptrain's terms: ZeroPadding2D
// folded into the convolution or pooling it feeds, "same" padding resolved,
// activations split out of Conv2D, and identities (linear activations,
// Flatten after global pooling) skipped.
type kop struct {
	kind   string // input, pad, conv, bn, relu, maxpool, add, gap, dense
	layer  string // the Keras layer (conv, bn, dense: whose weights these are)
	class  string // its class_name
	inputs []*kop

	filters, k, stride, pad int // conv (filters) and maxpool (k, stride, pad)
	bias                    bool
	eps                     float64 // bn
	center, scale           bool    // bn
	units                   int     // dense

	// ours names dptrain's layer for an expected op (conv1, layer1.0.bn2,
	// fc).
	ours string
}

func (o *kop) String() string {
	switch o.kind {
	case "conv":
		return fmt.Sprintf("Conv2D %d filters %d×%d stride %d padding %d bias %v", o.filters, o.k, o.k, o.stride, o.pad, o.bias)
	case "maxpool":
		return fmt.Sprintf("MaxPooling2D %d×%d stride %d padding %d", o.k, o.k, o.stride, o.pad)
	case "bn":
		return "BatchNormalization"
	case "dense":
		return fmt.Sprintf("Dense %d units", o.units)
	case "gap":
		return "GlobalAveragePooling2D"
	case "add":
		return "Add"
	case "relu":
		return "ReLU"
	case "pad":
		return fmt.Sprintf("ZeroPadding2D %d", o.pad)
	}
	return o.kind
}

// graph turns the layers from the output back to the input into kops.
type graph struct {
	m    *tfjsModel
	memo map[string]*kop
}

func (m *tfjsModel) ops() (*kop, error) {
	g := &graph{m: m, memo: map[string]*kop{}}
	out := m.byName[m.output]
	// A softmax at the very end (Dense(activation=softmax) or an Activation
	// layer) is the loss's business: the imported model outputs logits.
	if out.ClassName == "Activation" {
		var c struct {
			Activation string `json:"activation"`
		}
		if err := json.Unmarshal(out.Config, &c); err == nil && c.Activation == "softmax" && len(out.inbound) == 1 {
			out = m.byName[out.inbound[0]]
		}
	}
	return g.op(out.Name, true, 0)
}

func (g *graph) errorf(l *kerasLayer, format string, args ...any) error {
	return fmt.Errorf("tfjs: %s: layer %s (%s): %s", g.m.path, l.Name, l.ClassName, fmt.Sprintf(format, args...))
}

// pair reads a Keras int-or-pair setting (kernel_size, strides, pool_size)
// that must be square.
func pair(v any) (int, bool) {
	switch t := v.(type) {
	case float64:
		return int(t), t == float64(int(t))
	case []any:
		if len(t) == 2 {
			a, ok1 := t[0].(float64)
			b, ok2 := t[1].(float64)
			return int(a), ok1 && ok2 && a == b && a == float64(int(a))
		}
	}
	return 0, false
}

// symmetricPad reads ZeroPadding2D's padding: an int, a pair, or a pair of
// pairs, all four sides equal.
func symmetricPad(v any) (int, bool) {
	if p, ok := pair(v); ok {
		return p, true
	}
	t, ok := v.([]any)
	if !ok || len(t) != 2 {
		return 0, false
	}
	a, ok1 := pair(t[0])
	b, ok2 := pair(t[1])
	return a, ok1 && ok2 && a == b
}

func (g *graph) op(name string, isOutput bool, depth int) (*kop, error) {
	if o, ok := g.memo[name]; ok {
		return o, nil
	}
	l := g.m.byName[name]
	if depth > 10000 {
		return nil, g.errorf(l, "the graph is too deep (a cycle?)")
	}
	var cfg map[string]any
	if err := json.Unmarshal(l.Config, &cfg); err != nil {
		return nil, g.errorf(l, "config: %v", err)
	}
	in := func(n int) ([]*kop, error) {
		if len(l.inbound) != n {
			return nil, g.errorf(l, "%d inputs, want %d", len(l.inbound), n)
		}
		var ins []*kop
		for _, s := range l.inbound {
			o, err := g.op(s, false, depth+1)
			if err != nil {
				return nil, err
			}
			ins = append(ins, o)
		}
		return ins, nil
	}
	str := func(key string) string { s, _ := cfg[key].(string); return s }
	if df := str("data_format"); df != "" && df != "channels_last" {
		return nil, g.errorf(l, "data_format %q, want channels_last", df)
	}
	o := &kop{layer: l.Name, class: l.ClassName}
	var err error
	switch l.ClassName {
	case "InputLayer":
		o.kind = "input"
	case "ZeroPadding2D":
		p, ok := symmetricPad(cfg["padding"])
		if !ok {
			return nil, g.errorf(l, "padding %v: only equal padding on all four sides is supported", cfg["padding"])
		}
		o.kind, o.pad = "pad", p
		o.inputs, err = in(1)
	case "Conv2D":
		o, err = g.conv(l, cfg, in)
	case "BatchNormalization":
		o.kind = "bn"
		if !bnAxisLast(cfg["axis"]) {
			return nil, g.errorf(l, "axis %v: want the channel axis (-1 or 3, channels last)", cfg["axis"])
		}
		eps, _ := cfg["epsilon"].(float64)
		o.eps = eps
		o.center, o.scale = cfg["center"] != false, cfg["scale"] != false
		o.inputs, err = in(1)
	case "Activation", "ReLU":
		act := str("activation")
		if l.ClassName == "ReLU" {
			if mv, ok := cfg["max_value"].(float64); ok && mv != 0 {
				return nil, g.errorf(l, "max_value %g: only plain ReLU is supported", mv)
			}
			act = "relu"
		}
		ins, e := in(1)
		if e != nil {
			return nil, e
		}
		switch act {
		case "relu":
			o.kind, o.inputs = "relu", ins
		case "linear":
			o = ins[0]
		default:
			return nil, g.errorf(l, "activation %q: only relu (and softmax on the output) are supported", act)
		}
	case "MaxPooling2D":
		o.kind = "maxpool"
		var ok1, ok2 bool
		o.k, ok1 = pair(cfg["pool_size"])
		o.stride, ok2 = pair(cfg["strides"])
		if !ok1 || !ok2 || str("padding") != "valid" {
			return nil, g.errorf(l, "pool_size %v strides %v padding %q: want square windows and valid padding", cfg["pool_size"], cfg["strides"], str("padding"))
		}
		if o.inputs, err = in(1); err == nil && o.inputs[0].kind == "pad" {
			// Zero padding before a max pool equals dptrain's −∞ padding
			// when the input is ≥ 0 (after a ReLU) and every window holds
			// an input value.
			p := o.inputs[0]
			if p.inputs[0].kind != "relu" || p.pad >= o.k {
				return nil, g.errorf(l, "zero padding before max pooling is supported only after a ReLU, with padding < window")
			}
			o.pad, o.inputs = p.pad, p.inputs
		}
	case "Add":
		o.kind = "add"
		o.inputs, err = in(2)
	case "GlobalAveragePooling2D":
		o.kind = "gap"
		o.inputs, err = in(1)
	case "Flatten":
		ins, e := in(1)
		if e != nil {
			return nil, e
		}
		if ins[0].kind != "gap" {
			return nil, g.errorf(l, "Flatten is supported only after global pooling")
		}
		o = ins[0]
	case "Dense":
		o.kind = "dense"
		u, _ := cfg["units"].(float64)
		o.units, o.bias = int(u), cfg["use_bias"] != false
		switch act := str("activation"); {
		case act == "linear" || act == "":
		case act == "softmax" && isOutput:
		default:
			return nil, g.errorf(l, "activation %q: only linear (or softmax on the output) is supported", act)
		}
		o.inputs, err = in(1)
	default:
		return nil, g.errorf(l, "layer class %s is not supported (known: InputLayer, ZeroPadding2D, Conv2D, BatchNormalization, Activation, ReLU, MaxPooling2D, Add, GlobalAveragePooling2D, Flatten, Dense)", l.ClassName)
	}
	if err != nil {
		return nil, err
	}
	g.memo[name] = o
	return o, nil
}

func bnAxisLast(v any) bool {
	switch t := v.(type) {
	case float64:
		return t == -1 || t == 3
	case []any:
		return len(t) == 1 && bnAxisLast(t[0])
	}
	return false
}

// conv reads a Conv2D: padding "valid" (with a ZeroPadding2D before it
// folded in) or "same" where TensorFlow's padding is symmetric (odd kernel,
// stride 1; or a 1×1 kernel).
func (g *graph) conv(l *kerasLayer, cfg map[string]any, in func(int) ([]*kop, error)) (*kop, error) {
	o := &kop{kind: "conv", layer: l.Name, class: l.ClassName}
	f, _ := cfg["filters"].(float64)
	o.filters = int(f)
	var ok1, ok2 bool
	o.k, ok1 = pair(cfg["kernel_size"])
	o.stride, ok2 = pair(cfg["strides"])
	if !ok1 || !ok2 || o.filters < 1 {
		return nil, g.errorf(l, "kernel_size %v strides %v filters %v: want square kernels and strides", cfg["kernel_size"], cfg["strides"], cfg["filters"])
	}
	if d, ok := pair(cfg["dilation_rate"]); cfg["dilation_rate"] != nil && (!ok || d != 1) {
		return nil, g.errorf(l, "dilation_rate %v: only 1 is supported", cfg["dilation_rate"])
	}
	if gr, ok := cfg["groups"].(float64); ok && gr != 1 {
		return nil, g.errorf(l, "groups %g: only 1 is supported", gr)
	}
	o.bias = cfg["use_bias"] != false
	ins, err := in(1)
	if err != nil {
		return nil, err
	}
	o.inputs = ins
	switch pad, _ := cfg["padding"].(string); pad {
	case "valid":
		if ins[0].kind == "pad" {
			o.pad, o.inputs = ins[0].pad, ins[0].inputs
		}
	case "same":
		switch {
		case o.k == 1:
		case o.stride == 1 && o.k%2 == 1:
			o.pad = (o.k - 1) / 2
		default:
			return nil, g.errorf(l, "padding same with a %d×%d kernel and stride %d pads asymmetrically in TensorFlow, which dptrain's convolution does not", o.k, o.k, o.stride)
		}
	default:
		return nil, g.errorf(l, "padding %q, want valid or same", pad)
	}
	act, _ := cfg["activation"].(string)
	switch act {
	case "linear", "":
		return o, nil
	case "relu":
		return &kop{kind: "relu", layer: l.Name, class: l.ClassName, inputs: []*kop{o}}, nil
	}
	return nil, g.errorf(l, "activation %q: only linear or relu", act)
}

// matcher compares an expected graph with a model's, from the outputs back.
type matcher struct {
	memo  map[[2]*kop]bool
	best  string // the mismatch found deepest in the graph
	depth int
}

func (mt *matcher) fail(depth int, got, want *kop, format string, args ...any) bool {
	if depth >= mt.depth || mt.best == "" {
		mt.depth = depth
		layer := got.layer
		if layer == "" {
			layer = "(" + got.kind + ")"
		}
		where := ""
		if want.ours != "" {
			where = " (dptrain's " + want.ours + ")"
		}
		mt.best = fmt.Sprintf("layer %s: %s; the graph wants %s here%s", layer, fmt.Sprintf(format, args...), want, where)
	}
	return false
}

func (mt *matcher) match(want, got *kop, depth int) bool {
	key := [2]*kop{want, got}
	if v, ok := mt.memo[key]; ok {
		return v
	}
	ok := mt.compare(want, got, depth)
	mt.memo[key] = ok
	return ok
}

func (mt *matcher) compare(want, got *kop, depth int) bool {
	if want.kind != got.kind {
		return mt.fail(depth, got, want, "found %s (%s)", got, got.class)
	}
	switch want.kind {
	case "conv":
		if want.filters != got.filters || want.k != got.k || want.stride != got.stride || want.pad != got.pad {
			return mt.fail(depth, got, want, "found %s", got)
		}
	case "maxpool":
		if want.k != got.k || want.stride != got.stride || want.pad != got.pad {
			return mt.fail(depth, got, want, "found %s", got)
		}
	case "dense":
		if want.units > 0 && want.units != got.units {
			return mt.fail(depth, got, want, "found %s", got)
		}
	}
	if len(want.inputs) != len(got.inputs) {
		return mt.fail(depth, got, want, "%d inputs", len(got.inputs))
	}
	if want.kind == "add" {
		a, b := want.inputs, got.inputs
		return (mt.match(a[0], b[0], depth+1) && mt.match(a[1], b[1], depth+1)) ||
			(mt.match(a[0], b[1], depth+1) && mt.match(a[1], b[0], depth+1))
	}
	for i := range want.inputs {
		if !mt.match(want.inputs[i], got.inputs[i], depth+1) {
			return false
		}
	}
	return true
}

// assign collects, after a successful match, the Keras layer of every
// expected op that names a dptrain layer.
func (mt *matcher) assign(want, got *kop, out map[string]*kop) {
	if want.ours != "" {
		out[want.ours] = got
	}
	if want.kind == "add" && !(mt.memo[[2]*kop{want.inputs[0], got.inputs[0]}] && mt.memo[[2]*kop{want.inputs[1], got.inputs[1]}]) {
		mt.assign(want.inputs[0], got.inputs[1], out)
		mt.assign(want.inputs[1], got.inputs[0], out)
		return
	}
	for i := range want.inputs {
		mt.assign(want.inputs[i], got.inputs[i], out)
	}
}

// matchGraph matches got against want and returns the Keras op of each of
// dptrain's layers, or an error naming the first layer (from the input)
// where the graphs differ.
func matchGraph(path, arch string, want, got *kop) (map[string]*kop, error) {
	mt := &matcher{memo: map[[2]*kop]bool{}}
	if !mt.match(want, got, 0) {
		return nil, fmt.Errorf("tfjs: %s: not a %s graph that dptrain knows: %s", path, arch, strings.TrimSpace(mt.best))
	}
	out := map[string]*kop{}
	mt.assign(want, got, out)
	return out, nil
}
