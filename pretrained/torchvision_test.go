package pretrained_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dptrain/checkpoint"
	"dptrain/internal/torchref"
	"dptrain/pretrained"
	"dptrain/tensor"
)

// TestFromTorchvisionMatchesPyTorch imports torchvision ResNets with random
// weights and BatchNorm statistics (written by PyTorch itself) and checks
// the logits against PyTorch's eval-mode float64 forward pass on the same
// input. It skips without PyTorch (Debian python3-torch), or fails when
// DPTRAIN_REQUIRE_TORCH=1 (CI).
func TestFromTorchvisionMatchesPyTorch(t *testing.T) {
	torchref.Skip(t)
	cases := []struct {
		arch    string
		classes int
		size    int
	}{
		{"resnet18", 10, 64},
		{"resnet50", 7, 32},
	}
	if !testing.Short() {
		cases = append(cases, struct {
			arch    string
			classes int
			size    int
		}{"resnet34", 5, 64})
	}
	for i, tc := range cases {
		t.Run(tc.arch, func(t *testing.T) {
			ref := torchref.ResNet(t, tc.arch, tc.classes, 2, tc.size, tc.size, 10+i)
			for _, arch := range []string{tc.arch, ""} { // given, inferred
				im, err := pretrained.FromTorchvision(ref.Weights, arch)
				if err != nil {
					t.Fatal(err)
				}
				if im.Config.Name != tc.arch || im.Config.NumClasses != tc.classes || im.Normalize != "imagenet" {
					t.Fatalf("imported %+v, normalize %q", im.Config, im.Normalize)
				}
				x := tensor.New(ref.N, 3, ref.H, ref.W)
				copy(x.Data, ref.Input)
				y := im.Model.Forward(x, false)
				want := make([][]float64, ref.N)
				for j := range want {
					want[j] = ref.Logits64[j*ref.Classes : (j+1)*ref.Classes]
				}
				checkLogits(t, y.Data, want, 1e-4)
			}
		})
	}
}

// TestFromTorchvisionErrors: another architecture's state dict, a missing
// tensor, a wrong shape or dtype, each named in the error.
func TestFromTorchvisionErrors(t *testing.T) {
	torchref.Skip(t)
	ref := torchref.ResNet(t, "resnet18", 10, 1, 32, 32, 3)
	b, err := os.ReadFile(ref.Weights)
	if err != nil {
		t.Fatal(err)
	}
	raws, meta, err := checkpoint.DecodeSafetensorsRaw(b)
	if err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, edit func(map[string]checkpoint.Raw)) string {
		m := map[string]checkpoint.Raw{}
		for k, v := range raws {
			m[k] = v
		}
		edit(m)
		p := filepath.Join(t.TempDir(), "w.safetensors")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checkpoint.EncodeSafetensorsRaw(f, m, meta); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	for _, tc := range []struct {
		name  string
		arch  string
		edit  func(map[string]checkpoint.Raw)
		wants []string
	}{
		{"as resnet50", "resnet50", func(map[string]checkpoint.Raw) {}, []string{"is a resnet18", "not the resnet50"}},
		{"as resnet34", "resnet34", func(map[string]checkpoint.Raw) {}, []string{"is a resnet18", "not the resnet34"}},
		{"truncated resnet34", "resnet34", func(m map[string]checkpoint.Raw) { delete(m, "layer4.1.conv1.weight") }, []string{"layer1.2.", "missing", "resnet34"}},
		{"as vgg", "vgg16", func(map[string]checkpoint.Raw) {}, []string{"vgg16", "resnet18"}},
		{"missing tensor", "", func(m map[string]checkpoint.Raw) { delete(m, "layer3.1.bn2.running_var") }, []string{"layer3.1.bn2.running_var", "missing"}},
		{"extra tensor", "resnet18", func(m map[string]checkpoint.Raw) { m["layer5.0.conv1.weight"] = m["fc.bias"] }, []string{"layer5.0.conv1.weight", "not part of resnet18"}},
		{"shape", "", func(m map[string]checkpoint.Raw) {
			r := m["layer2.0.conv1.weight"]
			r.Shape = []int{r.Shape[0] * r.Shape[1], r.Shape[2], r.Shape[3]}
			m["layer2.0.conv1.weight"] = r
		}, []string{"layer2.0.conv1.weight", "shape"}},
		{"dtype", "", func(m map[string]checkpoint.Raw) {
			r := m["fc.bias"]
			r.DType = checkpoint.I32
			m["fc.bias"] = r
		}, []string{"fc.bias", "I32"}},
		{"not a resnet", "", func(m map[string]checkpoint.Raw) {
			for k := range m {
				if strings.HasPrefix(k, "layer") {
					delete(m, k)
				}
			}
		}, []string{"layer1.0.conv1.weight", "not a torchvision ResNet"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pretrained.FromTorchvision(write(t, tc.edit), tc.arch)
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
