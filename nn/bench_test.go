package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"dptrain/tensor"
)

func benchModel(b *testing.B, name string, size, batch int, private bool) {
	m, err := NewModel(ModelConfig{Name: name, NumClasses: 10, InputShape: [3]int{3, size, size}, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	x := tensor.New(batch, 3, size, size)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	labels := make([]int, batch)
	var loss SoftmaxCrossEntropy
	coef := make([]float32, batch)
	for i := range coef {
		coef[i] = 0.5
	}
	step := func() {
		loss.Forward(m.Forward(x, true), labels)
		dy := loss.Backward([]float32{1})
		m.ZeroGrad()
		if private {
			m.BackwardPerExample(dy, PerExampleOptions{})
			m.AccumulateClipped(coef)
		} else {
			m.Backward(dy)
		}
	}
	step()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "examples/s")
}

// BenchmarkStep: forward + backward of a training step, non-private and
// private (per-example norms + clipped sum), on random data.
func BenchmarkStep(b *testing.B) {
	for _, tc := range []struct {
		model       string
		size, batch int
	}{{"cnn-cifar", 32, 256}, {"wrn-16-4", 32, 128}, {"resnet18", 32, 128}, {"resnet18", 224, 16}} {
		for _, private := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s-%d-b%d-private=%v", tc.model, tc.size, tc.batch, private), func(b *testing.B) {
				benchModel(b, tc.model, tc.size, tc.batch, private)
			})
		}
	}
}

// convLayers are the 3×3 (Cin = Cout, stride 1, pad 1) layers of the
// per-layer table in BENCHMARKS.md: ResNet widths at CIFAR (32×32 input) and
// ImageNet (224×224 input) resolutions.
var convLayers = []struct{ c, hw int }{
	{64, 32}, {64, 56}, {128, 16}, {128, 28}, {256, 8}, {256, 14}, {512, 4}, {512, 7},
}

// convRefCols caps the columns of the reference GEMM of BenchmarkConvLayer
// (Cout × min(B·H·W, convRefCols) × Cin·9), to bound its memory.
const convRefCols = 4096

// BenchmarkConvLayer reports the GFLOP/s of single 3×3 convolutions at batch
// 32, FLOPs = 2·B·Cout·Cin·9·Hout·Wout forward and twice that backward
// (input and weight gradients):
//
//   - op=forward, op=backward: non-private;
//   - op=backward-private: per-example norms plus the clipped sum
//     (AccumulateClipped), counted with the backward FLOPs, so its rate
//     relative to op=backward is the private overhead of the layer;
//   - op=sgemm-serial, op=sgemm-parallel: the conv-shaped GEMM Cout × n × Cin·9
//     (n = min(B·H·W, convRefCols)) in the same run, the yardstick for the
//     fraction of the SGEMM rate the layer reaches.
func BenchmarkConvLayer(b *testing.B) {
	const batch = 32
	for _, l := range convLayers {
		flops := 2 * float64(batch) * float64(l.c*l.c*9) * float64(l.hw*l.hw)
		for _, op := range []string{"forward", "backward", "backward-private", "sgemm-serial", "sgemm-parallel"} {
			b.Run(fmt.Sprintf("conv%d-%dx%d/op=%s", l.c, l.hw, l.hw, op), func(b *testing.B) {
				r := rand.New(rand.NewPCG(3, uint64(l.c*l.hw)))
				if op == "sgemm-serial" || op == "sgemm-parallel" {
					m, k, n := l.c, l.c*9, min(batch*l.hw*l.hw, convRefCols)
					a, bb, cc := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
					for i := range a {
						a[i] = float32(r.NormFloat64())
					}
					for i := range bb {
						bb[i] = float32(r.NormFloat64())
					}
					f := tensor.Sgemm
					if op == "sgemm-serial" {
						f = tensor.SgemmSerial
					}
					f(false, false, m, n, k, 1, a, k, bb, n, 0, cc, n)
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						f(false, false, m, n, k, 1, a, k, bb, n, 0, cc, n)
					}
					b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					return
				}
				conv := NewConv2d("conv", l.c, l.c, 3, 1, 1, false, false, r)
				x := tensor.New(batch, l.c, l.hw, l.hw)
				for i := range x.Data {
					x.Data[i] = float32(r.NormFloat64())
				}
				y := conv.Forward(x, true)
				dy := tensor.New(y.Shape...)
				for i := range dy.Data {
					dy.Data[i] = float32(r.NormFloat64())
				}
				coef := make([]float32, batch)
				for i := range coef {
					coef[i] = 0.5
				}
				ctx := &BackwardContext{}
				run := func() {
					switch op {
					case "forward":
						conv.Forward(x, true)
					case "backward":
						*ctx = BackwardContext{Mode: Accumulate, NeedDX: true}
						conv.Backward(dy, ctx)
					case "backward-private":
						*ctx = BackwardContext{Mode: PerExample, NeedDX: true, SqNorms: growF64(ctx.SqNorms, batch)}
						conv.Backward(dy, ctx)
						conv.AccumulateClipped(coef)
					}
				}
				run() // scratch buffers are allocated once
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					run()
				}
				f := flops
				if op != "forward" {
					f *= 2
				}
				b.ReportMetric(f*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
