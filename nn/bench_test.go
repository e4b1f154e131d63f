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
