package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"dptrain/tensor"
)

func TestScatteringBackward(t *testing.T) {
	s := NewScattering(1, 8, 8, 2, 8)
	x := tensor.New(1, 1, 8, 8)
	y := s.Forward(x, true)
	if dx := s.Backward(y, &BackwardContext{}); dx != nil {
		t.Error("Backward without NeedDX returned a gradient")
	}
	defer func() {
		if _, ok := recover().(*ShapeError); !ok {
			t.Error("Backward with NeedDX did not panic with *ShapeError")
		}
	}()
	s.Backward(y, &BackwardContext{NeedDX: true})
}

func TestScatterNetModels(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params int
	}{
		{"scatternet-linear", 243*8*8*10 + 10},
		{"scatternet-cnn", (243*9*64 + 64) + (64*9*64 + 64) + (64*4*4*10 + 10)},
	} {
		m, err := NewModel(ModelConfig{Name: tc.name, NumClasses: 10, InputShape: [3]int{3, 32, 32}, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if m.NumParams() != tc.params {
			t.Errorf("%s: %d parameters, want %d", tc.name, m.NumParams(), tc.params)
		}
		if err := Validate(m); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		r := rand.New(rand.NewPCG(15, 16))
		x := tensor.New(4, 3, 32, 32)
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64())
		}
		y := m.Forward(x, true)
		if !slices.Equal(y.Shape, []int{4, 10}) {
			t.Fatalf("%s: logits %v, want [4 10]", tc.name, y.Shape)
		}
		var loss SoftmaxCrossEntropy
		loss.Forward(y, []int{0, 1, 2, 3})
		res := m.BackwardPerExample(loss.Backward([]float32{1}), PerExampleOptions{})
		for i, sq := range res.SqNorms {
			if !(sq > 0) || math.IsInf(sq, 0) {
				t.Errorf("%s: example %d: squared gradient norm %g", tc.name, i, sq)
			}
		}
	}
	for _, name := range []string{"scatternet-linear", "scatternet-cnn"} {
		if _, err := NewModel(ModelConfig{Name: name, NumClasses: 10, InputShape: [3]int{3, 30, 30}}); err == nil {
			t.Errorf("%s: 30×30 input accepted", name)
		}
	}
}

// The scattering maps of a CIFAR-sized batch: 81 per colour channel at 8×8.
func ExampleScattering() {
	s := NewScattering(3, 32, 32, 2, 8)
	x := tensor.New(2, 3, 32, 32)
	for i := range x.Data {
		x.Data[i] = float32(i%7) / 7
	}
	y := s.Forward(x, false)
	fmt.Println(s.Describe())
	fmt.Println(y.Shape)
	// Output:
	// scattering J=2 L=8 3→243 (32×32→8×8)
	// [2 243 8 8]
}

// One DP-SGD physical batch of scatternet-linear once the scattering maps
// are memoised (the steady state of training without augmentation):
// forward, per-example norms, clipped sum.
func BenchmarkScatterNetLinearCachedStep(b *testing.B) {
	const bs = 256
	m, err := NewModel(ModelConfig{Name: "scatternet-linear", NumClasses: 10, InputShape: [3]int{3, 32, 32}, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	x := tensor.New(bs, 3, 32, 32)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	labels := make([]int, bs)
	coef := make([]float32, bs)
	for i := range labels {
		labels[i], coef[i] = i%10, 0.5
	}
	m.Forward(x, true) // fill the memo
	var loss SoftmaxCrossEntropy
	for b.Loop() {
		loss.Forward(m.Forward(x, true), labels)
		m.BackwardPerExample(loss.Backward([]float32{1}), PerExampleOptions{})
		m.AccumulateClipped(coef)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*bs), "µs/example")
}
