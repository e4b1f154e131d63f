package nn_test

import (
	"fmt"
	"math"

	"dptrain/nn"
	"dptrain/tensor"
)

// One DP-SGD clipping step: per-example norms from the backward pass, clip
// factors min(1, C/(‖g_i‖+1e-6)), then the clipped sum in Param.Grad.
func Example() {
	m, _ := nn.NewModel(nn.ModelConfig{Name: "cnn-mnist", NumClasses: 10, InputShape: [3]int{1, 28, 28}, Seed: 1})
	x := tensor.New(4, 1, 28, 28)
	for i := range x.Data {
		x.Data[i] = float32(i%29) / 29
	}
	labels := []int{0, 1, 2, 3}
	var loss nn.SoftmaxCrossEntropy
	loss.Forward(m.Forward(x, true), labels)
	res := m.BackwardPerExample(loss.Backward([]float32{1}), nn.PerExampleOptions{})
	const clip = 1.0
	coef := make([]float32, len(res.SqNorms))
	for i, sq := range res.SqNorms {
		coef[i] = float32(math.Min(1, clip/(math.Sqrt(sq)+1e-6)))
	}
	m.ZeroGrad()
	m.AccumulateClipped(coef)
	var sq float64
	for _, p := range m.Params() {
		for _, g := range p.Grad {
			sq += float64(g) * float64(g)
		}
	}
	fmt.Println(len(res.SqNorms), "examples; clipped sum norm ≤ 4C:", math.Sqrt(sq) <= 4*clip)
	// Output: 4 examples; clipped sum norm ≤ 4C: true
}
