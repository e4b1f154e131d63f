package nn

import (
	"math/rand/v2"
	"testing"

	"dptrain/tensor"
)

// Helpers shared by the package's internal tests (export_test.go lends some
// of them to the external ones).

func randTensor(r *rand.Rand, shape ...int) *tensor.Tensor {
	x := tensor.New(shape...)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	return x
}

func randCoef(r *rand.Rand, n int) []float32 {
	c := make([]float32, n)
	for i := range c {
		c[i] = float32(0.1 + 0.9*r.Float64())
	}
	return c
}

// randGN returns an affine GroupNorm with random γ ≈ 1 and β ≈ 0.
func randGN(name string, g, c int, r *rand.Rand) *GroupNorm {
	n := NewGroupNorm(name, g, c, true)
	for i := range n.Gamma.Value {
		n.Gamma.Value[i] = float32(1 + 0.5*r.NormFloat64())
		n.Beta.Value[i] = float32(0.5 * r.NormFloat64())
	}
	return n
}

// randBN returns a frozen-statistics BatchNorm with random γ, β, running
// mean and variance (ε = eps).
func randBN(name string, c int, eps float32, r *rand.Rand) *BatchNorm2d {
	n := NewFrozenBatchNorm2d(name, c, eps)
	for i := 0; i < c; i++ {
		n.Gamma.Value[i] = float32(1 + 0.5*r.NormFloat64())
		n.Beta.Value[i] = float32(0.5 * r.NormFloat64())
		n.Mean.Value[i] = float32(0.3 * r.NormFloat64())
		n.Var.Value[i] = float32(0.5 + r.Float64())
	}
	return n
}

func smallModel(t testing.TB, name string, c, h, w int) *Model {
	t.Helper()
	m, err := NewModel(ModelConfig{Name: name, NumClasses: 10, InputShape: [3]int{c, h, w}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// forceNorm forces every convolution of m to rule.
func forceNorm(m *Model, rule NormRule) {
	for _, l := range m.GradLayers() {
		if c, ok := l.(*Conv2d); ok {
			c.ForceNorm = rule
		}
	}
}

func toF64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func tensorOf(x []float64, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i, v := range x {
		t.Data[i] = float32(v)
	}
	return t
}
