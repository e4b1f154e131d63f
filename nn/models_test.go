package nn

import (
	"strings"
	"testing"

	"dptrain/tensor"
)

// Published parameter counts. ResNets: torchvision (BatchNorm affine
// parameters; GroupNorm has the same count). cnn-mnist / cnn-cifar: the
// TF Privacy / Opacus MNIST example and Papernot et al. 2021. WRN-16-4:
// Zagoruyko & Komodakis 2016 (2.7M; 2,748,890 in the reference PyTorch
// implementation for 10 classes).
func TestParameterCounts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		classes int
		in      [3]int
		stem    string
		want    int
	}{
		{"cnn-mnist", 10, [3]int{1, 28, 28}, "", 26010},
		{"cnn-cifar", 10, [3]int{3, 32, 32}, "", 550570},
		{"wrn-16-4", 10, [3]int{3, 32, 32}, "", 2748890},
		{"resnet18", 1000, [3]int{3, 224, 224}, "", 11689512},
		{"resnet34", 1000, [3]int{3, 224, 224}, "", 21797672},
		{"resnet50", 1000, [3]int{3, 224, 224}, "", 25557032},
		// Keras's ResNet50 (keras.applications; its summary's total, the
		// BatchNorm moving statistics included).
		{"resnet50-keras", 1000, [3]int{3, 224, 224}, "", 25636712},
		// The CIFAR stem swaps the 7×7 stem convolution (3·64·49) for a 3×3 one (3·64·9).
		{"resnet18", 1000, [3]int{3, 32, 32}, "cifar", 11689512 - 3*64*49 + 3*64*9},
	} {
		m, err := NewModel(ModelConfig{Name: tc.name, NumClasses: tc.classes, InputShape: tc.in, Stem: tc.stem})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.NumParams(); got != tc.want {
			t.Errorf("%s %v: %d parameters, want %d", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestBatchNormResNetCounts checks the frozen-BatchNorm ResNets against
// torchvision's parameters() counts (the running statistics are buffers:
// frozen, outside the trainable count) and Keras's trainable count
// (25,583,592 of 25,636,712).
func TestBatchNormResNetCounts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		norm      string
		trainable int
	}{
		{"resnet18", "batch", 11689512},
		{"resnet34", "batch", 21797672},
		{"resnet50", "batch", 25557032},
		{"resnet50-keras", "", 25583592},
	} {
		m, err := NewModel(ModelConfig{Name: tc.name, NumClasses: 1000, InputShape: [3]int{3, 224, 224}, Norm: tc.norm})
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(m); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if got := m.NumTrainable(); got != tc.trainable {
			t.Errorf("%s norm %q: %d trainable, want %d", tc.name, tc.norm, got, tc.trainable)
		}
		// Freezing every layer but the last leaves the buffers frozen, and
		// FreezeLayers(0) unfreezes only what can be trained.
		if err := m.FreezeLayers(0); err != nil {
			t.Fatal(err)
		}
		if got := m.NumTrainable(); got != tc.trainable {
			t.Errorf("%s after FreezeLayers(0): %d trainable, want %d (buffers must stay frozen)", tc.name, got, tc.trainable)
		}
	}
}

func TestFreezePrefixes(t *testing.T) {
	m, err := NewModel(ModelConfig{Name: "resnet18", NumClasses: 10, InputShape: [3]int{3, 32, 32}, Norm: "batch"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.FreezePrefixes([]string{"conv1", "bn1", "layer1", "layer2.0"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		top, _, _ := strings.Cut(p.Name, ".")
		want := p.Buffer || top == "conv1" || top == "bn1" || top == "layer1" || strings.HasPrefix(p.Name, "layer2.0.")
		if p.Frozen != want {
			t.Errorf("%s: frozen %v, want %v", p.Name, p.Frozen, want)
		}
	}
	for _, bad := range [][]string{{"layer9"}, {"layer1.0.conv"}, {""}} {
		err := m.FreezePrefixes(bad)
		if err == nil || !strings.Contains(err.Error(), "freeze") {
			t.Errorf("FreezePrefixes(%q) = %v, want an error naming it", bad, err)
		}
	}
}

func TestModelsOutputShape(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   [3]int
		stem string
	}{
		{"cnn-mnist", [3]int{1, 28, 28}, ""},
		{"cnn-cifar", [3]int{3, 32, 32}, ""},
		{"wrn-16-4", [3]int{3, 32, 32}, ""},
		{"resnet18", [3]int{3, 32, 32}, ""},
		{"resnet18", [3]int{3, 64, 64}, "imagenet"},
		{"resnet50", [3]int{3, 32, 32}, ""},
	} {
		m, err := NewModel(ModelConfig{Name: tc.name, NumClasses: 7, InputShape: tc.in, Stem: tc.stem})
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(m); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		y := m.Forward(tensor.New(2, tc.in[0], tc.in[1], tc.in[2]), false)
		if y.Shape[0] != 2 || y.Shape[1] != 7 {
			t.Errorf("%s: output %v, want [2 7]", tc.name, y.Shape)
		}
	}
}

func TestNewModelErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  ModelConfig
		want string
	}{
		{ModelConfig{Name: "vgg", NumClasses: 10, InputShape: [3]int{3, 32, 32}}, "unknown"},
		{ModelConfig{Name: "resnet18", NumClasses: 1, InputShape: [3]int{3, 32, 32}}, "num classes"},
		{ModelConfig{Name: "resnet18", NumClasses: 10, InputShape: [3]int{3, 32, 32}, Stem: "tiny"}, "stem"},
		{ModelConfig{Name: "cnn-cifar", NumClasses: 10, InputShape: [3]int{3, 30, 30}}, "multiple of 8"},
		{ModelConfig{Name: "cnn-mnist", NumClasses: 10, InputShape: [3]int{1, 8, 8}}, "too small"},
	} {
		_, err := NewModel(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", tc.cfg, err, tc.want)
		}
	}
}

func TestValidateRejectsBatchNorm(t *testing.T) {
	m := &Model{Name: "bn-net", InputShape: [3]int{3, 8, 8}, Layers: []Layer{
		&Residual{Main: []Layer{NewBatchNorm2d("bn", 3)}},
	}}
	err := Validate(m)
	if err == nil || !strings.Contains(err.Error(), "GroupNorm") || !strings.Contains(err.Error(), "0.main.0") {
		t.Fatalf("Validate = %v, want an error naming the layer and suggesting GroupNorm", err)
	}
	m.Layers[0].(*Residual).Main[0].(*BatchNorm2d).UseRunningStats = true
	if err := Validate(m); err != nil {
		t.Fatalf("frozen BatchNorm with running statistics: %v", err)
	}
}
