package nn_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"dptrain/nn"
)

// newModel is NewModel with a panic turned into an error (a rejection the
// estimate must match too).
func newModel(cfg nn.ModelConfig) (m *nn.Model, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return nn.NewModel(cfg)
}

// estimateCases is the table of TestEstimateModelParams: every model ×
// input shapes × classes {2, 10, 1000}. The parameters of the ResNets and
// the WRN do not depend on the input size, only on the channels and (for
// ResNets) the stem it selects, so they get one shape per class count; the
// models that flatten feature maps into a linear layer get several.
func estimateCases() []nn.ModelConfig {
	classes := []int{2, 10, 1000}
	var cs []nn.ModelConfig
	add := func(name string, shapes [][3]int, mod func(*nn.ModelConfig)) {
		for _, in := range shapes {
			for _, k := range classes {
				cfg := nn.ModelConfig{Name: name, NumClasses: k, InputShape: in, Seed: 1}
				if mod != nil {
					mod(&cfg)
				}
				cs = append(cs, cfg)
			}
		}
	}
	flat := [][3]int{{1, 28, 28}, {3, 32, 32}, {3, 64, 64}, {3, 96, 96}, {3, 224, 224}, {1, 14, 14}, {2, 24, 40}, {1, 13, 13}, {3, 30, 30}}
	add("cnn-mnist", flat, nil)
	add("cnn-cifar", flat, nil)
	// The scattering filters cost time to build (0.4 s at 96×96), hence
	// fewer and smaller shapes; 4×4, 30×30 and 260×260 (a padded FFT length
	// 4·67) are rejected.
	scat := [][3]int{{1, 28, 28}, {3, 32, 32}, {3, 64, 64}, {2, 24, 40}, {1, 8, 8}, {1, 4, 4}, {3, 30, 30}, {3, 260, 260}}
	for _, name := range []string{"scatternet-linear", "scatternet-cnn"} {
		add(name, scat, nil)
		add(name, [][3]int{{3, 32, 32}, {1, 8, 12}}, func(c *nn.ModelConfig) { c.FeatureNorm = "data" })
		add(name, [][3]int{{3, 32, 32}}, func(c *nn.ModelConfig) { c.FeatureNorm = "batch" })
	}
	// One shape per class count: the CIFAR stem on 1 and 3 channels, the
	// ImageNet stem (224×224, and an explicit one on 64×64).
	for _, name := range []string{"wrn-16-4", "resnet18", "resnet34", "resnet50"} {
		for i, in := range [][3]int{{1, 28, 28}, {3, 32, 32}, {3, 224, 224}} {
			cs = append(cs, nn.ModelConfig{Name: name, NumClasses: classes[i], InputShape: in, Seed: 1})
		}
	}
	for i, in := range [][3]int{{3, 32, 32}, {3, 64, 64}, {3, 224, 224}} {
		cs = append(cs, nn.ModelConfig{Name: "resnet50-keras", NumClasses: classes[i], InputShape: in, Seed: 1})
		for _, name := range []string{"resnet18", "resnet34", "resnet50"} {
			cs = append(cs, nn.ModelConfig{Name: name, NumClasses: classes[i], InputShape: in, Norm: "batch", Seed: 1})
		}
	}
	cs = append(cs,
		nn.ModelConfig{Name: "resnet18", NumClasses: 10, InputShape: [3]int{3, 32, 32}, Norm: "layer"},
		nn.ModelConfig{Name: "resnet50-keras", NumClasses: 10, InputShape: [3]int{3, 32, 32}, Norm: "group"},
		nn.ModelConfig{Name: "resnet18", NumClasses: 10, InputShape: [3]int{1, 64, 64}, Stem: "imagenet"},
		nn.ModelConfig{Name: "resnet18", NumClasses: 10, InputShape: [3]int{3, 16, 16}, Stem: "imagenet"},
		nn.ModelConfig{Name: "resnet50", NumClasses: 10, InputShape: [3]int{3, 4, 4}},
		nn.ModelConfig{Name: "resnet34", NumClasses: 10, InputShape: [3]int{3, 32, 32}, Stem: "tiny"},
		nn.ModelConfig{Name: "wrn-16-4", NumClasses: 10, InputShape: [3]int{3, 7, 32}},
		nn.ModelConfig{Name: "vgg16", NumClasses: 10, InputShape: [3]int{3, 32, 32}},
		nn.ModelConfig{Name: "cnn-mnist", NumClasses: 1, InputShape: [3]int{1, 28, 28}},
		nn.ModelConfig{Name: "cnn-cifar", NumClasses: 10, InputShape: [3]int{0, 32, 32}},
	)
	return cs
}

// maxBuiltParams bounds the models TestEstimateModelParams builds (larger
// ones, e.g. scatternet-cnn at 224×224 with 1000 classes, only come from a
// wide linear layer whose formula smaller inputs check).
const maxBuiltParams = 30 << 20

// TestEstimateModelParams checks that EstimateModel rejects exactly the
// configurations NewModel rejects, with the same error, and otherwise
// counts exactly the parameters of the built model.
func TestEstimateModelParams(t *testing.T) {
	seen := map[string]bool{}
	for _, cfg := range estimateCases() {
		desc := fmt.Sprintf("%s %v classes=%d stem=%q feature_norm=%q norm=%q", cfg.Name, cfg.InputShape, cfg.NumClasses, cfg.Stem, cfg.FeatureNorm, cfg.Norm)
		seen[cfg.Name] = true
		est, eerr := nn.EstimateModel(cfg)
		if eerr == nil && est.Params > maxBuiltParams {
			t.Logf("%s: %d parameters, not built", desc, est.Params)
			continue
		}
		m, merr := newModel(cfg)
		switch {
		case merr != nil && eerr != nil:
			if merr.Error() != eerr.Error() {
				t.Errorf("%s: NewModel: %v\nEstimateModel: %v", desc, merr, eerr)
			}
		case merr != nil || eerr != nil:
			t.Errorf("%s: NewModel error %v, EstimateModel error %v", desc, merr, eerr)
		case int64(m.NumParams()) != est.Params:
			t.Errorf("%s: estimated %d parameters, NewModel has %d", desc, est.Params, m.NumParams())
		}
	}
	for _, name := range nn.ModelNames() {
		if !seen[name] {
			t.Errorf("model %s: not in the table", name)
		}
	}
}

// TestEstimateModelFixedBytes checks FixedBytes against what NewModel
// allocates besides its parameters (Value and Grad: 8 bytes each): an
// upper bound, within 1 MiB of slack (layer structs, names, rounding), and
// not more than 3 times too large.
func TestEstimateModelFixedBytes(t *testing.T) {
	const slack = 1 << 20
	var cfgs []nn.ModelConfig
	for _, name := range nn.ModelNames() {
		in := [3]int{3, 32, 32}
		if name == "cnn-mnist" {
			in = [3]int{1, 28, 28}
		}
		cfgs = append(cfgs, nn.ModelConfig{Name: name, NumClasses: 10, InputShape: in})
		if strings.HasPrefix(name, "scatternet") {
			cfgs = append(cfgs,
				nn.ModelConfig{Name: name, NumClasses: 10, InputShape: [3]int{3, 64, 64}},
				nn.ModelConfig{Name: name, NumClasses: 10, InputShape: [3]int{1, 64, 64}, FeatureNorm: "data"})
		}
	}
	for _, cfg := range cfgs {
		est, err := nn.EstimateModel(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, err := nn.NewModel(cfg)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		measured := int64(after.TotalAlloc-before.TotalAlloc) - 8*int64(m.NumParams())
		t.Logf("%s %v: FixedBytes %d, measured %d", cfg.Name, cfg.InputShape, est.FixedBytes, measured)
		if measured > est.FixedBytes+slack || est.FixedBytes > 3*measured+slack {
			t.Errorf("%s %v: NewModel allocated %d bytes besides its parameters, FixedBytes = %d", cfg.Name, cfg.InputShape, measured, est.FixedBytes)
		}
		if want := int64(0); strings.HasPrefix(cfg.Name, "scatternet") {
			if want = 3 << 30; est.CacheBytes != want {
				t.Errorf("%s: CacheBytes %d, want %d", cfg.Name, est.CacheBytes, want)
			}
		} else if est.CacheBytes != 0 || est.FixedBytes != 0 {
			t.Errorf("%s: CacheBytes %d, FixedBytes %d, want 0", cfg.Name, est.CacheBytes, est.FixedBytes)
		}
	}
}

// TestEstimateModelHuge: the configuration that ran out of memory
// (--crop-size=10000 on MNIST) is estimated at once, without allocating.
func TestEstimateModelHuge(t *testing.T) {
	cfg := nn.ModelConfig{Name: "cnn-mnist", NumClasses: 10, InputShape: [3]int{1, 10000, 10000}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	est, err := nn.EstimateModel(cfg)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d >= 1<<20 {
		t.Errorf("EstimateModel allocated %d bytes", d)
	}
	// conv1 1→16 k8 s2 p3: 10000 → 5000, maxpool 2 s1 → 4999; conv2
	// 16→32 k4 s2: → 2498, maxpool → 2497. Parameters: conv1 16·64 + 16 =
	// 1,040; conv2 32·16·16 + 32 = 8,224; fc1 (32·2497²)·32 + 32 =
	// 6,384,649,248; fc2 32·10 + 10 = 330. About 32·32·2500² = 6.4e9, i.e.
	// 51 GB for values and gradients.
	const want = 1040 + 8224 + 32*2497*2497*32 + 32 + 330
	if est.Params != want || est.FixedBytes != 0 || est.CacheBytes != 0 {
		t.Errorf("estimate %+v, want %d parameters and no fixed or cache bytes", est, want)
	}
	if est.ParamBytes() != 8*want || est.Bytes() != 8*want {
		t.Errorf("ParamBytes %d, Bytes %d, want %d", est.ParamBytes(), est.Bytes(), 8*want)
	}

	// ScatterNet at the same size: rejected at once (the padded FFT length
	// 10000/4 + 2 = 2502 = 2·3²·139 has a prime factor the FFT does not
	// take); at 9992×9992 (9992/4 + 2 = 2500 = 2²·5⁴, padded 10000×10000)
	// accepted, with filters and scratch of ~850 bytes per padded pixel.
	cfg = nn.ModelConfig{Name: "scatternet-linear", NumClasses: 10, InputShape: [3]int{1, 10000, 10000}}
	if _, err := nn.EstimateModel(cfg); err == nil || !strings.Contains(err.Error(), "prime factor") {
		t.Errorf("scatternet-linear 10000×10000: error %v, want one about a prime factor", err)
	}
	cfg.InputShape = [3]int{1, 9992, 9992}
	runtime.ReadMemStats(&before)
	est, err = nn.EstimateModel(cfg)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d >= 1<<20 {
		t.Errorf("EstimateModel allocated %d bytes", d)
	}
	if p := int64(10000 * 10000); est.FixedBytes < 500*p || est.FixedBytes > 1500*p {
		t.Errorf("scatternet-linear 9992×9992: FixedBytes %d, want ~ 850 bytes × 10⁸ padded pixels", est.FixedBytes)
	}

	// Sizes that overflow int64 are an error, not a wrapped count.
	for _, c := range []nn.ModelConfig{
		{Name: "cnn-mnist", NumClasses: 10, InputShape: [3]int{1, 1 << 40, 1 << 40}},
		{Name: "cnn-cifar", NumClasses: 10, InputShape: [3]int{1, 1 << 32, 1 << 32}},
		{Name: "cnn-mnist", NumClasses: 1 << 62, InputShape: [3]int{1, 28, 28}},
		{Name: "scatternet-cnn", NumClasses: 10, InputShape: [3]int{1 << 50, 32, 32}},
	} {
		if _, err := nn.EstimateModel(c); err == nil || !strings.Contains(err.Error(), "overflows") {
			t.Errorf("%s %v: error %v, want an overflow", c.Name, c.InputShape, err)
		}
	}
}

// A caller checks that a configuration fits in memory before building it:
// 8 bytes per parameter (Value, Grad), the fixed buffers and the memo cap,
// plus what its optimiser keeps (here one momentum value per parameter).
func ExampleEstimateModel() {
	cfg := nn.ModelConfig{Name: "cnn-mnist", NumClasses: 10, InputShape: [3]int{1, 10000, 10000}}
	est, err := nn.EstimateModel(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	const limit = 16 << 30 // bytes
	need := est.Bytes() + 4*est.Params
	if need > limit {
		fmt.Printf("model %s on %v: %d parameters need %.1f GiB, more than the %d GiB allowed\n",
			cfg.Name, cfg.InputShape, est.Params, float64(need)/(1<<30), limit>>30)
	}
	// Output: model cnn-mnist on [1 10000 10000]: 6384658842 parameters need 71.4 GiB, more than the 16 GiB allowed
}
