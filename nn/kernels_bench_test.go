package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"dptrain/tensor"
)

// benchLayer times Forward (fwd) or Backward (bwd, Accumulate mode, dx
// needed) of one layer on random data, reporting the bandwidth of the input
// tensor (bytes of x per op) so that kernels of different shapes compare,
// and the CPU time per op (all threads; far less sensitive than wall time to
// other tenants of a shared machine).
func benchLayer(b *testing.B, l Layer, shape []int, backward bool) {
	r := rand.New(rand.NewPCG(1, 2))
	x := tensor.New(shape...)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	y := l.Forward(x, true)
	dy := tensor.New(y.Shape...)
	for i := range dy.Data {
		dy.Data[i] = float32(r.NormFloat64())
	}
	ctx := &BackwardContext{NeedDX: true}
	l.Backward(dy, ctx)
	b.SetBytes(int64(4 * len(x.Data)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for i := 0; i < b.N; i++ {
		if backward {
			l.Backward(dy, ctx)
		} else {
			l.Forward(x, true)
		}
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkKernels covers the non-GEMM layers at the shapes of a ResNet-18
// step at 32×32, batch 128 (layer1 and layer4 activations) and of cnn-cifar
// (tanh), forward and backward.
func BenchmarkKernels(b *testing.B) {
	for _, tc := range []struct {
		name  string
		layer func() Layer
		shape []int
	}{
		{"groupnorm-32/64-b128-32x32", func() Layer { return NewGroupNorm("g", 32, 64, true) }, []int{128, 64, 32, 32}},
		{"groupnorm-32/512-b128-4x4", func() Layer { return NewGroupNorm("g", 32, 512, true) }, []int{128, 512, 4, 4}},
		{"relu-b128-64x32x32", func() Layer { return &ReLU{} }, []int{128, 64, 32, 32}},
		{"tanh-b256-32x32x32", func() Layer { return &Tanh{} }, []int{256, 32, 32, 32}},
		{"residual-relu-b128-64x32x32", func() Layer {
			return &Residual{PostReLU: true, Main: []Layer{&ReLU{}}}
		}, []int{128, 64, 32, 32}},
		{"maxpool-2s2-b256-32x32x32", func() Layer { return NewMaxPool(2, 2, 0) }, []int{256, 32, 32, 32}},
		{"maxpool-3s2p1-b16-64x112x112", func() Layer { return NewMaxPool(3, 2, 1) }, []int{16, 64, 112, 112}},
	} {
		for _, bwd := range []bool{false, true} {
			dir := "fwd"
			if bwd {
				dir = "bwd"
			}
			b.Run(fmt.Sprintf("%s/%s", tc.name, dir), func(b *testing.B) {
				benchLayer(b, tc.layer(), tc.shape, bwd)
			})
		}
	}
}
