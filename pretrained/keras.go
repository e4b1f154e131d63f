package pretrained

import (
	"fmt"
	"math"
	"path/filepath"

	"dptrain/nn"
)

// kerasResNet50 is the expected graph of Keras's ResNet-50 (v1: the stride
// of a downsampling block on its first 1×1 convolution) under dptrain's
// layer names, for classes outputs (0: any).
func kerasResNet50(classes int) *kop {
	conv := func(ours string, in *kop, filters, k, stride, pad int) *kop {
		return &kop{kind: "conv", ours: ours, filters: filters, k: k, stride: stride, pad: pad, inputs: []*kop{in}}
	}
	bn := func(ours string, in *kop) *kop { return &kop{kind: "bn", ours: ours, inputs: []*kop{in}} }
	relu := func(in *kop) *kop { return &kop{kind: "relu", inputs: []*kop{in}} }
	x := &kop{kind: "input"}
	x = relu(bn("bn1", conv("conv1", x, 64, 7, 2, 3)))
	x = &kop{kind: "maxpool", k: 3, stride: 2, pad: 1, inputs: []*kop{x}}
	for stage, n := range [4]int{3, 4, 6, 3} {
		width := 64 << stage
		for b := 0; b < n; b++ {
			stride := 1
			if stage > 0 && b == 0 {
				stride = 2
			}
			name := fmt.Sprintf("layer%d.%d", stage+1, b)
			m := relu(bn(name+".bn1", conv(name+".conv1", x, width, 1, stride, 0)))
			m = relu(bn(name+".bn2", conv(name+".conv2", m, width, 3, 1, 1)))
			m = bn(name+".bn3", conv(name+".conv3", m, 4*width, 1, 1, 0))
			short := x
			if b == 0 {
				short = bn(name+".downsample.1", conv(name+".downsample.0", x, 4*width, 1, stride, 0))
			}
			x = relu(&kop{kind: "add", inputs: []*kop{m, short}})
		}
	}
	x = &kop{kind: "gap", inputs: []*kop{x}}
	return &kop{kind: "dense", ours: "fc", units: classes, inputs: []*kop{x}}
}

// kerasEps is the default BatchNorm ε of dptrain's resnet50-keras (the
// ε of keras.applications' ResNet50); a model with another records it in
// its configuration (BatchNormEps).
const kerasEps = 1e-3

// FromTFJS imports a Keras ResNet-50 saved as a TensorFlow.js layers-model
// (dir/model.json and its weight shards): it recognises the graph, maps
// every layer to dptrain's resnet50-keras and converts the weights
// (kernels HWIO → OIHW, the Dense kernel [in, out] → [out, in], the first
// convolution's input channels reversed so that the model takes RGB where
// Keras's "caffe" preprocessing feeds BGR). The preprocessing becomes
// normalize: caffe (x·255 − the ImageNet BGR mean, per RGB channel).
func FromTFJS(dir string) (*Imported, error) {
	tm, err := readTFJS(dir)
	if err != nil {
		return nil, err
	}
	got, err := tm.ops()
	if err != nil {
		return nil, err
	}
	byOurs, err := matchGraph(tm.path, "Keras ResNet-50", kerasResNet50(0), got)
	if err != nil {
		return nil, err
	}
	fc := byOurs["fc"]
	if fc.units < 2 {
		return nil, fmt.Errorf("tfjs: %s: layer %s has %d units, want ≥ 2 classes", tm.path, fc.layer, fc.units)
	}
	ws, err := tm.readWeights()
	if err != nil {
		return nil, err
	}
	// The model's BatchNorm ε is the stem's; a layer with another moves the
	// difference into its running variance (BatchNorm depends on σ² + ε).
	eps := float32(byOurs["bn1"].eps)
	if !(eps > 0) {
		return nil, fmt.Errorf("tfjs: %s: layer %s: epsilon %g, want > 0", tm.path, byOurs["bn1"].layer, byOurs["bn1"].eps)
	}
	cfg := nn.ModelConfig{Name: "resnet50-keras", NumClasses: fc.units, InputShape: [3]int{3, 224, 224}, Stem: "imagenet", Norm: "batch"}
	if eps != kerasEps {
		cfg.BatchNormEps = eps
	}
	m, err := nn.NewModel(cfg)
	if err != nil {
		return nil, err
	}
	cv := &kerasConverter{path: tm.path, ws: ws, used: map[string]bool{}, eps: float64(eps)}
	for _, l := range m.GradLayers() {
		if err := cv.load(l, byOurs); err != nil {
			return nil, err
		}
	}
	for name := range ws {
		if !cv.used[name] {
			return nil, fmt.Errorf("tfjs: %s: weight %s belongs to no layer of the ResNet-50 graph", tm.path, name)
		}
	}
	im := &Imported{Model: m, Config: cfg, Normalize: "caffe", ImageSize: 224, Source: "tfjs:" + dir,
		Classes: numberedClasses(cfg.NumClasses)}
	files := []string{tm.path}
	for _, g := range tm.groups {
		for _, p := range g.Paths {
			files = append(files, filepath.Join(dir, p))
		}
	}
	if im.Digest, err = digestFiles(files...); err != nil {
		return nil, err
	}
	// Class names beside the model (the npm package keeps them in
	// assets/labels.json next to the model's folder).
	if lp := findLabels(filepath.Join(dir, "labels.json"), filepath.Join(dir, "..", "assets", "labels.json")); lp != "" {
		if im.Classes, err = ReadLabels(lp, cfg.NumClasses); err != nil {
			return nil, err
		}
	}
	return im, nil
}

type kerasConverter struct {
	eps  float64 // the model's BatchNorm ε
	path string
	ws   map[string]tfjsTensor
	used map[string]bool
}

// get returns weight name of layer with the given shape.
func (c *kerasConverter) get(layer, name string, shape ...int) ([]float32, error) {
	t, key, ok := layerWeight(c.ws, layer, name)
	if !ok {
		return nil, fmt.Errorf("tfjs: %s: layer %s has no weight %s in weightsManifest", c.path, layer, key)
	}
	if !equalInts(t.Shape, shape) {
		return nil, fmt.Errorf("tfjs: %s: weight %s has shape %v, the graph needs %v", c.path, key, t.Shape, shape)
	}
	for i, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("tfjs: %s: weight %s[%d] is %g: expected finite weights", c.path, key, i, v)
		}
	}
	c.used[key] = true
	return t.Data, nil
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

func (c *kerasConverter) load(l nn.GradLayer, byOurs map[string]*kop) error {
	switch v := l.(type) {
	case *nn.Conv2d:
		ours := v.W.Name[:len(v.W.Name)-len(".weight")]
		op := byOurs[ours]
		k, err := c.get(op.layer, "kernel", v.K, v.K, v.Cin, v.Cout)
		if err != nil {
			return err
		}
		// HWIO → OIHW; the stem's input channels BGR → RGB.
		for o := 0; o < v.Cout; o++ {
			for i := 0; i < v.Cin; i++ {
				src := i
				if ours == "conv1" {
					src = v.Cin - 1 - i
				}
				for y := 0; y < v.K; y++ {
					for x := 0; x < v.K; x++ {
						v.W.Value[((o*v.Cin+i)*v.K+y)*v.K+x] = k[((y*v.K+x)*v.Cin+src)*v.Cout+o]
					}
				}
			}
		}
		if !op.bias {
			clear(v.B.Value)
			return nil
		}
		b, err := c.get(op.layer, "bias", v.Cout)
		if err != nil {
			return err
		}
		copy(v.B.Value, b)
	case *nn.BatchNorm2d:
		ours := v.Mean.Name[:len(v.Mean.Name)-len(".running_mean")]
		op := byOurs[ours]
		for i := range v.Gamma.Value {
			v.Gamma.Value[i], v.Beta.Value[i] = 1, 0
		}
		if op.scale {
			g, err := c.get(op.layer, "gamma", v.C)
			if err != nil {
				return err
			}
			copy(v.Gamma.Value, g)
		}
		if op.center {
			b, err := c.get(op.layer, "beta", v.C)
			if err != nil {
				return err
			}
			copy(v.Beta.Value, b)
		}
		mean, err := c.get(op.layer, "moving_mean", v.C)
		if err != nil {
			return err
		}
		variance, err := c.get(op.layer, "moving_variance", v.C)
		if err != nil {
			return err
		}
		copy(v.Mean.Value, mean)
		for i, s := range variance {
			adj := float64(s)
			if op.eps != c.eps {
				adj += op.eps - c.eps
			}
			if s < 0 || adj < 0 {
				return fmt.Errorf("tfjs: %s: layer %s: moving_variance[%d] = %g with epsilon %g: want a variance ≥ 0 (and ≥ %g − epsilon, the model's ε being the first BatchNorm's)", c.path, op.layer, i, s, op.eps, c.eps)
			}
			v.Var.Value[i] = float32(adj)
		}
	case *nn.Linear:
		op := byOurs["fc"]
		k, err := c.get(op.layer, "kernel", v.In, v.Out)
		if err != nil {
			return err
		}
		for o := 0; o < v.Out; o++ {
			for i := 0; i < v.In; i++ {
				v.W.Value[o*v.In+i] = k[i*v.Out+o]
			}
		}
		if !op.bias {
			clear(v.B.Value)
			return nil
		}
		b, err := c.get(op.layer, "bias", v.Out)
		if err != nil {
			return err
		}
		copy(v.B.Value, b)
	default:
		return fmt.Errorf("tfjs: internal: no conversion for %s", l.Describe())
	}
	return nil
}
