package kerasref

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// layerConfig holds the config fields of every supported layer; the ones
// whose JSON type varies (int or pair, string or object) stay raw.
type layerConfig struct {
	Name            string          `json:"name"`
	BatchInputShape []*int          `json:"batch_input_shape"`
	BatchShape      []*int          `json:"batch_shape"`
	Padding         json.RawMessage `json:"padding"`
	Filters         int             `json:"filters"`
	KernelSize      json.RawMessage `json:"kernel_size"`
	Strides         json.RawMessage `json:"strides"`
	DilationRate    json.RawMessage `json:"dilation_rate"`
	Groups          *int            `json:"groups"`
	Activation      json.RawMessage `json:"activation"`
	UseBias         *bool           `json:"use_bias"`
	DataFormat      *string         `json:"data_format"`
	Axis            json.RawMessage `json:"axis"`
	Epsilon         *float64        `json:"epsilon"`
	Center          *bool           `json:"center"`
	Scale           *bool           `json:"scale"`
	PoolSize        json.RawMessage `json:"pool_size"`
	Units           int             `json:"units"`
	Keepdims        *bool           `json:"keepdims"`
}

func (c *layerConfig) inputShape() []*int {
	if c.BatchInputShape != nil {
		return c.BatchInputShape
	}
	return c.BatchShape
}

// tensor is one example's activations, channels-last: d[(y*w+x)*c+ch].
type tensor struct {
	h, w, c int
	d       []float64
}

func newTensor(h, w, c int) *tensor {
	return &tensor{h: h, w: w, c: c, d: make([]float64, h*w*c)}
}

// op is a bound layer. preact asks for the output before the layer's
// activation; ops without one return errNoActivation.
type op interface {
	apply(in []*tensor, preact bool) (*tensor, error)
}

var errNoActivation = fmt.Errorf("layer has no activation to strip")

// buildOp parses a layer's config and binds its weights.
func buildOp(n *node, idx *weightIndex) (op, error) {
	c := &n.cfg
	if c.DataFormat != nil && *c.DataFormat != "channels_last" {
		return nil, fmt.Errorf("data_format %q unsupported (only channels_last)", *c.DataFormat)
	}
	wantInputs := 1
	var o op
	switch n.class {
	case "InputLayer":
		wantInputs = 0
		o = identityOp{}
	case "ZeroPadding2D":
		t, b, l, r, err := parsePadding2D(c.Padding)
		if err != nil {
			return nil, err
		}
		o = &padOp{t, b, l, r}
	case "Conv2D":
		return buildConv(n, idx)
	case "BatchNormalization":
		return buildBN(n, idx)
	case "Activation":
		act, err := parseActivation(c.Activation)
		if err != nil {
			return nil, err
		}
		o = &activationOp{act}
	case "MaxPooling2D":
		ph, pw, err := intPair(c.PoolSize, "pool_size", 2)
		if err != nil {
			return nil, err
		}
		sh, sw, err := intPair(c.Strides, "strides", 0)
		if err != nil {
			return nil, err
		}
		if sh == 0 { // strides null: default to pool_size
			sh, sw = ph, pw
		}
		same, err := parsePaddingMode(c.Padding)
		if err != nil {
			return nil, err
		}
		o = &maxPoolOp{ph, pw, sh, sw, same}
	case "GlobalAveragePooling2D":
		o = gapOp{}
	case "Add":
		wantInputs = -1
		o = addOp{}
	case "Dense":
		return buildDense(n, idx)
	case "Flatten":
		o = flattenOp{}
	default:
		return nil, fmt.Errorf("unsupported layer class %q", n.class)
	}
	if err := checkInputs(n, wantInputs); err != nil {
		return nil, err
	}
	return o, nil
}

func checkInputs(n *node, want int) error {
	switch {
	case want < 0 && len(n.inputs) < 2:
		return fmt.Errorf("needs at least 2 inputs, has %d", len(n.inputs))
	case want >= 0 && len(n.inputs) != want:
		return fmt.Errorf("needs %d input(s), has %d", want, len(n.inputs))
	}
	return nil
}

// intPair reads an int or a pair of ints; def is used when absent.
func intPair(raw json.RawMessage, field string, def int) (int, int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return def, def, nil
	}
	var k int
	if err := json.Unmarshal(raw, &k); err == nil {
		return k, k, nil
	}
	var p []int
	if err := json.Unmarshal(raw, &p); err != nil || len(p) != 2 {
		return 0, 0, fmt.Errorf("%s %s: want an int or a pair of ints", field, raw)
	}
	return p[0], p[1], nil
}

// parsePadding2D reads ZeroPadding2D's padding: p, [ph, pw], or
// [[top, bottom], [left, right]].
func parsePadding2D(raw json.RawMessage) (t, b, l, r int, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 1, 1, 1, 1, nil // Keras default
	}
	var k int
	if json.Unmarshal(raw, &k) == nil {
		t, b, l, r = k, k, k, k
	} else {
		var pp [][]int
		var p []int
		switch {
		case json.Unmarshal(raw, &p) == nil && len(p) == 2:
			t, b, l, r = p[0], p[0], p[1], p[1]
		case json.Unmarshal(raw, &pp) == nil && len(pp) == 2 && len(pp[0]) == 2 && len(pp[1]) == 2:
			t, b, l, r = pp[0][0], pp[0][1], pp[1][0], pp[1][1]
		default:
			return 0, 0, 0, 0, fmt.Errorf("padding %s: want an int, a pair, or a pair of pairs", raw)
		}
	}
	if t < 0 || b < 0 || l < 0 || r < 0 {
		return 0, 0, 0, 0, fmt.Errorf("padding %s: negative", raw)
	}
	return t, b, l, r, nil
}

// parsePaddingMode reads "valid" or "same" (true).
func parsePaddingMode(raw json.RawMessage) (bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return false, fmt.Errorf("padding %s: want \"valid\" or \"same\"", raw)
	}
	switch strings.ToLower(s) {
	case "valid":
		return false, nil
	case "same":
		return true, nil
	}
	return false, fmt.Errorf("padding %q unsupported (want valid or same)", s)
}

type activation int

const (
	actLinear activation = iota
	actRelu
	actSoftmax
	actSigmoid
	actTanh
)

func parseActivation(raw json.RawMessage) (activation, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return actLinear, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("activation %s: want a name", raw)
	}
	switch s {
	case "linear", "":
		return actLinear, nil
	case "relu":
		return actRelu, nil
	case "softmax":
		return actSoftmax, nil
	case "sigmoid":
		return actSigmoid, nil
	case "tanh":
		return actTanh, nil
	}
	return 0, fmt.Errorf("activation %q unsupported", s)
}

// activate applies a in place; softmax runs over channels at each pixel.
func activate(t *tensor, a activation) {
	switch a {
	case actRelu:
		for i, v := range t.d {
			if v < 0 {
				t.d[i] = 0
			}
		}
	case actSigmoid:
		for i, v := range t.d {
			t.d[i] = 1 / (1 + math.Exp(-v))
		}
	case actTanh:
		for i, v := range t.d {
			t.d[i] = math.Tanh(v)
		}
	case actSoftmax:
		for p := 0; p < t.h*t.w; p++ {
			softmaxInPlace(t.d[p*t.c : (p+1)*t.c])
		}
	}
}

func softmaxInPlace(v []float64) {
	mx := math.Inf(-1)
	for _, x := range v {
		mx = math.Max(mx, x)
	}
	s := 0.0
	for i, x := range v {
		v[i] = math.Exp(x - mx)
		s += v[i]
	}
	for i := range v {
		v[i] /= s
	}
}

type identityOp struct{}

func (identityOp) apply(in []*tensor, preact bool) (*tensor, error) {
	if preact {
		return nil, errNoActivation
	}
	return in[0], nil
}

type padOp struct{ t, b, l, r int }

func (p *padOp) apply(in []*tensor, preact bool) (*tensor, error) {
	if preact {
		return nil, errNoActivation
	}
	x := in[0]
	out := newTensor(x.h+p.t+p.b, x.w+p.l+p.r, x.c)
	for y := 0; y < x.h; y++ {
		dst := ((y+p.t)*out.w + p.l) * x.c
		copy(out.d[dst:dst+x.w*x.c], x.d[y*x.w*x.c:(y+1)*x.w*x.c])
	}
	return out, nil
}

// samePad is TensorFlow's "same" padding along one axis: the output size
// and the padding before (the extra goes after).
func samePad(size, k, s int) (out, before int) {
	out = (size + s - 1) / s
	total := max((out-1)*s+k-size, 0)
	return out, total / 2
}

// validOut is the "valid" output size along one axis (may be <= 0).
func validOut(size, k, s int) int {
	if size < k {
		return 0
	}
	return (size-k)/s + 1
}

type convOp struct {
	kh, kw, cin, cout int
	sh, sw            int
	same              bool
	kernel            []float64 // HWIO
	bias              []float64 // nil without bias
	act               activation
}

func buildConv(n *node, idx *weightIndex) (op, error) {
	c := &n.cfg
	if err := checkInputs(n, 1); err != nil {
		return nil, err
	}
	if c.Groups != nil && *c.Groups != 1 {
		return nil, fmt.Errorf("groups %d unsupported (only 1)", *c.Groups)
	}
	dh, dw, err := intPair(c.DilationRate, "dilation_rate", 1)
	if err != nil {
		return nil, err
	}
	if dh != 1 || dw != 1 {
		return nil, fmt.Errorf("dilation_rate [%d, %d] unsupported (only 1)", dh, dw)
	}
	kh, kw, err := intPair(c.KernelSize, "kernel_size", 0)
	if err != nil {
		return nil, err
	}
	sh, sw, err := intPair(c.Strides, "strides", 1)
	if err != nil {
		return nil, err
	}
	if kh <= 0 || kw <= 0 || sh <= 0 || sw <= 0 || c.Filters <= 0 {
		return nil, fmt.Errorf("bad kernel_size [%d, %d], strides [%d, %d] or filters %d", kh, kw, sh, sw, c.Filters)
	}
	same, err := parsePaddingMode(c.Padding)
	if err != nil {
		return nil, err
	}
	act, err := parseActivation(c.Activation)
	if err != nil {
		return nil, err
	}
	k, err := idx.get(n.name, "kernel", nil)
	if err != nil {
		return nil, err
	}
	if len(k.shape) != 4 || k.shape[0] != kh || k.shape[1] != kw || k.shape[3] != c.Filters {
		return nil, fmt.Errorf("weight %q has shape %v, want [%d, %d, in, %d]", k.name, k.shape, kh, kw, c.Filters)
	}
	o := &convOp{kh: kh, kw: kw, cin: k.shape[2], cout: c.Filters, sh: sh, sw: sw, same: same, kernel: k.data, act: act}
	if c.UseBias == nil || *c.UseBias {
		b, err := idx.get(n.name, "bias", []int{c.Filters})
		if err != nil {
			return nil, err
		}
		o.bias = b.data
	}
	return o, nil
}

func (o *convOp) apply(in []*tensor, preact bool) (*tensor, error) {
	x := in[0]
	if x.c != o.cin {
		return nil, fmt.Errorf("input has %d channels, kernel wants %d", x.c, o.cin)
	}
	var oh, ow, pt, pl int
	if o.same {
		oh, pt = samePad(x.h, o.kh, o.sh)
		ow, pl = samePad(x.w, o.kw, o.sw)
	} else {
		oh, ow = validOut(x.h, o.kh, o.sh), validOut(x.w, o.kw, o.sw)
	}
	if oh <= 0 || ow <= 0 {
		return nil, fmt.Errorf("input %d×%d is smaller than the %d×%d kernel", x.h, x.w, o.kh, o.kw)
	}
	out := newTensor(oh, ow, o.cout)
	cin, cout := o.cin, o.cout
	parallelRows(oh, func(oy int) {
		for ox := 0; ox < ow; ox++ {
			acc := out.d[(oy*ow+ox)*cout : (oy*ow+ox+1)*cout]
			if o.bias != nil {
				copy(acc, o.bias)
			}
			for ky := 0; ky < o.kh; ky++ {
				iy := oy*o.sh - pt + ky
				if iy < 0 || iy >= x.h {
					continue
				}
				for kx := 0; kx < o.kw; kx++ {
					ix := ox*o.sw - pl + kx
					if ix < 0 || ix >= x.w {
						continue
					}
					xin := x.d[(iy*x.w+ix)*cin : (iy*x.w+ix+1)*cin]
					tap := o.kernel[(ky*o.kw+kx)*cin*cout : (ky*o.kw+kx+1)*cin*cout]
					for ci, v := range xin {
						if v == 0 {
							continue
						}
						wr := tap[ci*cout : (ci+1)*cout]
						for co, wv := range wr {
							acc[co] += v * wv
						}
					}
				}
			}
		}
	})
	if !preact {
		activate(out, o.act)
	}
	return out, nil
}

type bnOp struct {
	scale, shift []float64 // y = x*scale + shift per channel
}

func buildBN(n *node, idx *weightIndex) (op, error) {
	c := &n.cfg
	if err := checkInputs(n, 1); err != nil {
		return nil, err
	}
	if ax := bytes.TrimSpace(c.Axis); len(ax) > 0 {
		var a int
		var as []int
		switch {
		case json.Unmarshal(ax, &a) == nil:
		case json.Unmarshal(ax, &as) == nil && len(as) == 1:
			a = as[0]
		default:
			return nil, fmt.Errorf("axis %s unsupported (only -1 or 3)", ax)
		}
		if a != -1 && a != 3 {
			return nil, fmt.Errorf("axis %d unsupported (only -1 or 3)", a)
		}
	}
	eps := 1e-3
	if c.Epsilon != nil {
		eps = *c.Epsilon
	}
	mean, err := idx.get(n.name, "moving_mean", nil)
	if err != nil {
		return nil, err
	}
	if len(mean.shape) != 1 {
		return nil, fmt.Errorf("weight %q has shape %v, want [channels]", mean.name, mean.shape)
	}
	ch := mean.shape[0]
	vr, err := idx.get(n.name, "moving_variance", []int{ch})
	if err != nil {
		return nil, err
	}
	o := &bnOp{scale: make([]float64, ch), shift: make([]float64, ch)}
	var gamma, beta []float64
	if c.Scale == nil || *c.Scale {
		g, err := idx.get(n.name, "gamma", []int{ch})
		if err != nil {
			return nil, err
		}
		gamma = g.data
	}
	if c.Center == nil || *c.Center {
		b, err := idx.get(n.name, "beta", []int{ch})
		if err != nil {
			return nil, err
		}
		beta = b.data
	}
	for i := range ch {
		g := 1.0
		if gamma != nil {
			g = gamma[i]
		}
		s := g / math.Sqrt(vr.data[i]+eps)
		o.scale[i] = s
		o.shift[i] = -mean.data[i] * s
		if beta != nil {
			o.shift[i] += beta[i]
		}
	}
	return o, nil
}

func (o *bnOp) apply(in []*tensor, preact bool) (*tensor, error) {
	if preact {
		return nil, errNoActivation
	}
	x := in[0]
	if x.c != len(o.scale) {
		return nil, fmt.Errorf("input has %d channels, weights have %d", x.c, len(o.scale))
	}
	out := newTensor(x.h, x.w, x.c)
	for p := 0; p < x.h*x.w; p++ {
		xs, ys := x.d[p*x.c:(p+1)*x.c], out.d[p*x.c:(p+1)*x.c]
		for i, v := range xs {
			ys[i] = v*o.scale[i] + o.shift[i]
		}
	}
	return out, nil
}

type activationOp struct{ act activation }

func (o *activationOp) apply(in []*tensor, preact bool) (*tensor, error) {
	x := in[0]
	if preact {
		return x, nil
	}
	out := &tensor{h: x.h, w: x.w, c: x.c, d: append([]float64(nil), x.d...)}
	activate(out, o.act)
	return out, nil
}

type maxPoolOp struct {
	ph, pw, sh, sw int
	same           bool
}

func (o *maxPoolOp) apply(in []*tensor, preact bool) (*tensor, error) {
	if preact {
		return nil, errNoActivation
	}
	x := in[0]
	if o.ph <= 0 || o.pw <= 0 || o.sh <= 0 || o.sw <= 0 {
		return nil, fmt.Errorf("bad pool_size [%d, %d] or strides [%d, %d]", o.ph, o.pw, o.sh, o.sw)
	}
	var oh, ow, pt, pl int
	if o.same {
		oh, pt = samePad(x.h, o.ph, o.sh)
		ow, pl = samePad(x.w, o.pw, o.sw)
	} else {
		oh, ow = validOut(x.h, o.ph, o.sh), validOut(x.w, o.pw, o.sw)
	}
	if oh <= 0 || ow <= 0 {
		return nil, fmt.Errorf("input %d×%d is smaller than the %d×%d pool", x.h, x.w, o.ph, o.pw)
	}
	out := newTensor(oh, ow, x.c)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			acc := out.d[(oy*ow+ox)*x.c : (oy*ow+ox+1)*x.c]
			for i := range acc {
				acc[i] = math.Inf(-1) // "same" pads with -inf
			}
			for ky := 0; ky < o.ph; ky++ {
				iy := oy*o.sh - pt + ky
				if iy < 0 || iy >= x.h {
					continue
				}
				for kx := 0; kx < o.pw; kx++ {
					ix := ox*o.sw - pl + kx
					if ix < 0 || ix >= x.w {
						continue
					}
					for i, v := range x.d[(iy*x.w+ix)*x.c : (iy*x.w+ix+1)*x.c] {
						if v > acc[i] || math.IsNaN(v) {
							acc[i] = v
						}
					}
				}
			}
		}
	}
	return out, nil
}

type gapOp struct{}

func (gapOp) apply(in []*tensor, preact bool) (*tensor, error) {
	if preact {
		return nil, errNoActivation
	}
	x := in[0]
	out := newTensor(1, 1, x.c)
	for p := 0; p < x.h*x.w; p++ {
		for i, v := range x.d[p*x.c : (p+1)*x.c] {
			out.d[i] += v
		}
	}
	for i := range out.d {
		out.d[i] /= float64(x.h * x.w)
	}
	return out, nil
}

type addOp struct{}

func (addOp) apply(in []*tensor, preact bool) (*tensor, error) {
	if preact {
		return nil, errNoActivation
	}
	x := in[0]
	out := &tensor{h: x.h, w: x.w, c: x.c, d: append([]float64(nil), x.d...)}
	for k, y := range in[1:] {
		if y.h != x.h || y.w != x.w || y.c != x.c {
			return nil, fmt.Errorf("input %d has shape %d×%d×%d, input 0 has %d×%d×%d", k+1, y.h, y.w, y.c, x.h, x.w, x.c)
		}
		for i, v := range y.d {
			out.d[i] += v
		}
	}
	return out, nil
}

type flattenOp struct{}

func (flattenOp) apply(in []*tensor, preact bool) (*tensor, error) {
	if preact {
		return nil, errNoActivation
	}
	x := in[0]
	return &tensor{h: 1, w: 1, c: x.h * x.w * x.c, d: x.d}, nil
}

type denseOp struct {
	in, units int
	kernel    []float64 // [in, units]
	bias      []float64
	act       activation
}

func buildDense(n *node, idx *weightIndex) (op, error) {
	c := &n.cfg
	if err := checkInputs(n, 1); err != nil {
		return nil, err
	}
	if c.Units <= 0 {
		return nil, fmt.Errorf("bad units %d", c.Units)
	}
	act, err := parseActivation(c.Activation)
	if err != nil {
		return nil, err
	}
	k, err := idx.get(n.name, "kernel", nil)
	if err != nil {
		return nil, err
	}
	if len(k.shape) != 2 || k.shape[1] != c.Units {
		return nil, fmt.Errorf("weight %q has shape %v, want [in, %d]", k.name, k.shape, c.Units)
	}
	o := &denseOp{in: k.shape[0], units: c.Units, kernel: k.data, act: act}
	if c.UseBias == nil || *c.UseBias {
		b, err := idx.get(n.name, "bias", []int{c.Units})
		if err != nil {
			return nil, err
		}
		o.bias = b.data
	}
	return o, nil
}

// apply maps the last axis, at every pixel (Keras Dense on a rank-3 input).
func (o *denseOp) apply(in []*tensor, preact bool) (*tensor, error) {
	x := in[0]
	if x.c != o.in {
		return nil, fmt.Errorf("input has %d features (last axis), kernel wants %d", x.c, o.in)
	}
	out := newTensor(x.h, x.w, o.units)
	for p := 0; p < x.h*x.w; p++ {
		acc := out.d[p*o.units : (p+1)*o.units]
		if o.bias != nil {
			copy(acc, o.bias)
		}
		for i, v := range x.d[p*o.in : (p+1)*o.in] {
			wr := o.kernel[i*o.units : (i+1)*o.units]
			for j, wv := range wr {
				acc[j] += v * wv
			}
		}
	}
	if !preact {
		activate(out, o.act)
	}
	return out, nil
}
