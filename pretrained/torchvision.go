package pretrained

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"dptrain/checkpoint"
	"dptrain/nn"
)

// TorchvisionArchs lists the architectures FromTorchvision reads.
var TorchvisionArchs = []string{"resnet18", "resnet34", "resnet50"}

// FromTorchvision imports a torchvision ResNet state dict stored as
// safetensors (as scripts/pth_to_safetensors.py writes it). arch is
// resnet18, resnet34 or resnet50, or "" to infer it from the tensor names;
// the number of classes comes from fc.weight. A "module." prefix on every
// name (DataParallel) is dropped and num_batches_tracked is ignored. A
// tensor the architecture lacks, one it needs and the file lacks, a shape
// or dtype mismatch, or a non-finite value is an error naming the tensor.
func FromTorchvision(path, arch string) (*Imported, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("torchvision: %w", err)
	}
	raws, _, err := checkpoint.DecodeSafetensorsRaw(b)
	if err != nil {
		return nil, fmt.Errorf("torchvision: %s: %w", path, err)
	}
	ts, _, err := checkpoint.DecodeSafetensors(b)
	if err != nil {
		return nil, fmt.Errorf("torchvision: %s: %w", path, err)
	}
	ts, raws = stripModule(ts), stripModule(raws)
	for name, r := range raws {
		if strings.HasSuffix(name, ".num_batches_tracked") {
			delete(ts, name)
			continue
		}
		switch r.DType {
		case checkpoint.F32, checkpoint.F16, checkpoint.BF16, checkpoint.F64:
		default:
			return nil, fmt.Errorf("torchvision: %s: tensor %s has dtype %s, want a floating-point type (F32, F16, BF16, F64)", path, name, r.DType)
		}
	}
	inferred, ierr := inferArch(path, ts)
	switch {
	case arch == "" && ierr != nil:
		return nil, ierr
	case arch == "":
		arch = inferred
	case ierr == nil && inferred != arch:
		return nil, fmt.Errorf("torchvision: %s: the state dict is a %s (its blocks and tensor layer1.0.conv1.weight %v say so), not the %s asked for", path, inferred, ts["layer1.0.conv1.weight"].Shape, arch)
	}
	known := false
	for _, a := range TorchvisionArchs {
		known = known || a == arch
	}
	if !known {
		return nil, fmt.Errorf("torchvision: architecture %q, want one of %s", arch, strings.Join(TorchvisionArchs, ", "))
	}
	fc, ok := ts["fc.weight"]
	if !ok || len(fc.Shape) != 2 {
		return nil, fmt.Errorf("torchvision: %s: no tensor fc.weight [classes, features]: not a torchvision ResNet state dict", path)
	}
	cfg := nn.ModelConfig{Name: arch, NumClasses: fc.Shape[0], InputShape: [3]int{3, 224, 224}, Stem: "imagenet", Norm: "batch"}
	m, err := nn.NewModel(cfg)
	if err != nil {
		return nil, fmt.Errorf("torchvision: %s: %w", path, err)
	}
	own := map[string]bool{}
	for _, p := range m.Params() {
		own[p.Name] = true
		t, ok := ts[p.Name]
		if !ok {
			return nil, fmt.Errorf("torchvision: %s: tensor %s %v missing: the file is not a complete %s state dict", path, p.Name, p.Shape, arch)
		}
		if !equalInts(t.Shape, p.Shape) {
			return nil, fmt.Errorf("torchvision: %s: tensor %s has shape %v, %s needs %v", path, p.Name, t.Shape, arch, p.Shape)
		}
		for i, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("torchvision: %s: tensor %s[%d] is %g: expected finite weights", path, p.Name, i, v)
			}
		}
		if strings.HasSuffix(p.Name, ".running_var") {
			for i, v := range t.Data {
				if v < 0 {
					return nil, fmt.Errorf("torchvision: %s: tensor %s[%d] = %g: a variance must be ≥ 0", path, p.Name, i, v)
				}
			}
		}
		copy(p.Value, t.Data)
	}
	var extra []string
	for name := range ts {
		if !own[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, fmt.Errorf("torchvision: %s: tensor %s is not part of %s (%d such tensors): a state dict of another architecture?", path, extra[0], arch, len(extra))
	}
	im := &Imported{Model: m, Config: cfg, Normalize: "imagenet", ImageSize: 224, Source: "torchvision:" + path,
		Classes: numberedClasses(cfg.NumClasses)}
	if im.Digest, err = digestFiles(path); err != nil {
		return nil, err
	}
	return im, nil
}

// stripModule drops the "module." prefix (DataParallel) when every name
// has it.
func stripModule[T any](ts map[string]T) map[string]T {
	for k := range ts {
		if !strings.HasPrefix(k, "module.") {
			return ts
		}
	}
	out := make(map[string]T, len(ts))
	for k, v := range ts {
		out[strings.TrimPrefix(k, "module.")] = v
	}
	return out
}

// inferArch tells resnet18/34/50 (and names the deeper ones it does not
// support) from the blocks present.
func inferArch(path string, ts map[string]checkpoint.Tensor) (string, error) {
	var blocks [4]int
	for s := 0; s < 4; s++ {
		for ts[fmt.Sprintf("layer%d.%d.conv1.weight", s+1, blocks[s])].Data != nil {
			blocks[s]++
		}
	}
	_, bottleneck := ts["layer1.0.conv3.weight"]
	switch {
	case !bottleneck && blocks == [4]int{2, 2, 2, 2}:
		return "resnet18", nil
	case !bottleneck && blocks == [4]int{3, 4, 6, 3}:
		return "resnet34", nil
	case bottleneck && blocks == [4]int{3, 4, 6, 3}:
		return "resnet50", nil
	case blocks == [4]int{}:
		return "", fmt.Errorf("torchvision: %s: no tensor layer1.0.conv1.weight: not a torchvision ResNet state dict", path)
	}
	return "", fmt.Errorf("torchvision: %s: blocks per stage %v (bottleneck %v): not resnet18, resnet34 or resnet50", path, blocks, bottleneck)
}
