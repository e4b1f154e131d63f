package checkpoint

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// resnet18Shapes returns the parameter shapes of torchvision's ResNet-18 with
// GroupNorm in place of BatchNorm (the same parameter count, 11,689,512).
func resnet18Shapes() map[string][]int {
	s := map[string][]int{
		"conv1.weight": {64, 3, 7, 7}, "gn1.weight": {64}, "gn1.bias": {64},
		"fc.weight": {1000, 512}, "fc.bias": {1000},
	}
	in := 64
	for l, out := range []int{64, 128, 256, 512} {
		for blk := range 2 {
			p := fmt.Sprintf("layer%d.%d.", l+1, blk)
			cin := out
			if blk == 0 {
				cin = in
			}
			s[p+"conv1.weight"] = []int{out, cin, 3, 3}
			s[p+"conv2.weight"] = []int{out, out, 3, 3}
			for _, g := range []string{"gn1", "gn2"} {
				s[p+g+".weight"], s[p+g+".bias"] = []int{out}, []int{out}
			}
			if blk == 0 && cin != out {
				s[p+"downsample.0.weight"] = []int{out, cin, 1, 1}
				s[p+"downsample.1.weight"], s[p+"downsample.1.bias"] = []int{out}, []int{out}
			}
		}
		in = out
	}
	return s
}

func resnet18Tensors(rng *rand.Rand) map[string]Tensor {
	ts := make(map[string]Tensor)
	for name, shape := range resnet18Shapes() {
		ts[name] = makeTensor(rng, shape...)
	}
	return ts
}

func TestResNet18Size(t *testing.T) {
	n := 0
	for _, s := range resnet18Shapes() {
		n += numel("test", "", s)
	}
	if n != 11_689_512 {
		t.Fatalf("%d parameters, want 11,689,512 (torchvision resnet18)", n)
	}
}

func tensorBytes(ck *Checkpoint) int64 {
	var n int64
	for _, g := range ck.Tensors {
		for _, t := range g {
			n += 4 * int64(len(t.Data))
		}
	}
	return n
}

// benchCheckpoint is a ResNet-18 checkpoint: weights only, or with SGD
// momentum and EMA (what the trainer saves).
func benchCheckpoint(full bool) *Checkpoint {
	rng := rand.New(rand.NewPCG(18, 18))
	ck := &Checkpoint{Step: 1, Tensors: map[string]map[string]Tensor{"weights": resnet18Tensors(rng)},
		Blobs: map[string][]byte{"state.json": []byte(`{}`), "ledger.json": []byte(`{}`)}}
	if full {
		ck.Tensors["optimizer"] = resnet18Tensors(rng)
		ck.Tensors["ema"] = resnet18Tensors(rng)
	}
	return ck
}

func BenchmarkEncodeSafetensors(b *testing.B) {
	ts := resnet18Tensors(rand.New(rand.NewPCG(1, 1)))
	var n int64
	for _, t := range ts {
		n += 4 * int64(len(t.Data))
	}
	b.SetBytes(n)
	for b.Loop() {
		if _, err := EncodeSafetensors(io.Discard, ts, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSafetensors(b *testing.B) {
	ts := resnet18Tensors(rand.New(rand.NewPCG(1, 1)))
	var buf bytes.Buffer
	n, err := EncodeSafetensors(&buf, ts, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n)
	for b.Loop() {
		if _, _, err := DecodeSafetensors(buf.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSave(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := map[bool]string{false: "resnet18-weights", true: "resnet18-weights+momentum+ema"}[full]
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			ck := benchCheckpoint(full)
			b.SetBytes(tensorBytes(ck))
			for b.Loop() {
				ck.Step++
				if _, err := Save(dir, ck); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := Prune(dir, 1); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	for _, full := range []bool{false, true} {
		name := map[bool]string{false: "resnet18-weights", true: "resnet18-weights+momentum+ema"}[full]
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			ck := benchCheckpoint(full)
			p, err := Save(dir, ck)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(tensorBytes(ck))
			for b.Loop() {
				if _, err := Load(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLoadLatest(b *testing.B) {
	dir := b.TempDir()
	ck := benchCheckpoint(true)
	if _, err := Save(dir, ck); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(tensorBytes(ck))
	for b.Loop() {
		if _, _, _, err := LoadLatest(dir); err != nil {
			b.Fatal(err)
		}
	}
}
