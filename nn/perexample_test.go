package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"dptrain/tensor"
)

// perExampleReference computes each example's gradient the naive way: a loop
// over examples, each run alone (its K rows as a batch) through the ordinary
// Accumulate-mode backward pass (itself checked against finite differences).
func perExampleReference(m *Model, x, dy *tensor.Tensor, k int) [][]float64 {
	n := x.Shape[0] / k
	var out [][]float64
	for j := 0; j < n; j++ {
		m.ZeroGrad()
		m.Forward(x.Slice0(j*k, (j+1)*k), true)
		m.Backward(dy.Slice0(j*k, (j+1)*k))
		var g []float64
		for _, p := range m.Params() {
			if !p.Frozen {
				g = append(g, toF64(p.Grad)...)
			}
		}
		out = append(out, g)
	}
	return out
}

func forceNorm(m *Model, method string) {
	for _, l := range m.GradLayers() {
		if c, ok := l.(*Conv2d); ok {
			c.ForceNorm = NormRule(method)
		}
	}
}

func checkPerExample(t *testing.T, m *Model, inShape []int, k int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	x := tensorOf(randF64(r, prod(inShape)), inShape...)
	logits := m.Forward(x, true)
	dy := tensorOf(randF64(r, len(logits.Data)), logits.Shape...)
	want := perExampleReference(m, x, dy, k)
	n := len(want)
	coef := make([]float32, n)
	for j := range coef {
		coef[j] = float32(r.Float64())
	}
	wantSum := make([]float64, len(want[0]))
	for j, g := range want {
		for i, v := range g {
			wantSum[i] += float64(coef[j]) * v
		}
	}
	for _, method := range []string{"", "ghost", "materialize", "materialize-stored"} {
		forceNorm(m, method)
		m.ZeroGrad()
		m.Forward(x, true)
		res := m.BackwardPerExample(dy, PerExampleOptions{Group: k, PerLayer: true})
		for j := 0; j < n; j++ {
			var ref float64
			for _, v := range want[j] {
				ref += v * v
			}
			if math.Abs(res.SqNorms[j]-ref) > 1e-4*ref+1e-10 {
				t.Errorf("method %q example %d: ‖g‖² = %.8g, reference %.8g", method, j, res.SqNorms[j], ref)
			}
			var perLayer float64
			for _, ln := range res.LayerNorms {
				perLayer += ln[j]
			}
			if math.Abs(perLayer-res.SqNorms[j]) > 1e-9*ref {
				t.Errorf("method %q example %d: per-layer norms sum to %g, total %g", method, j, perLayer, res.SqNorms[j])
			}
		}
		m.AccumulateClipped(coef)
		var got []float64
		for _, p := range m.Params() {
			if !p.Frozen {
				got = append(got, toF64(p.Grad)...)
			}
		}
		var diff, norm float64
		for i := range got {
			diff += (got[i] - wantSum[i]) * (got[i] - wantSum[i])
			norm += wantSum[i] * wantSum[i]
		}
		if math.Sqrt(diff) > 1e-4*math.Sqrt(norm) {
			t.Errorf("method %q: clipped sum off by %g relative", method, math.Sqrt(diff/norm))
		}
	}
	forceNorm(m, "")
}

func TestPerExampleLayers(t *testing.T) {
	for _, tc := range layerCases() {
		for _, k := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/K=%d", tc.name, k), func(t *testing.T) {
				r := rand.New(rand.NewPCG(11, uint64(len(tc.name))))
				l := tc.build(r)
				if len(l.Params()) == 0 {
					t.Skip("no parameters")
				}
				in := append([]int{3 * k}, tc.in[1:]...)
				m := &Model{Name: tc.name, Layers: []Layer{l}}
				if len(in) == 4 {
					m.InputShape = [3]int{in[1], in[2], in[3]}
				}
				if len(in) == 2 {
					// Model.Forward wants images: feed the linear layer through Flatten.
					m.Layers = []Layer{&Flatten{}, l}
					m.InputShape = [3]int{in[1], 1, 1}
					in = []int{in[0], in[1], 1, 1}
				}
				checkPerExample(t, m, in, k, 5)
			})
		}
	}
}

func smallModel(t *testing.T, name string, c, h, w int) *Model {
	m, err := NewModel(ModelConfig{Name: name, NumClasses: 10, InputShape: [3]int{c, h, w}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPerExampleModels(t *testing.T) {
	cases := []struct {
		model   string
		c, h, w int
		k       int
	}{
		{"cnn-mnist", 1, 28, 28, 1},
		{"cnn-cifar", 3, 32, 32, 1},
		{"cnn-cifar", 3, 32, 32, 2},
		{"wrn-16-4", 3, 16, 16, 1},
		{"resnet18", 3, 16, 16, 1},
	}
	if !testing.Short() {
		cases = append(cases, struct {
			model   string
			c, h, w int
			k       int
		}{"resnet18", 3, 32, 32, 1}, struct {
			model   string
			c, h, w int
			k       int
		}{"wrn-16-4", 3, 32, 32, 2})
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-%dx%d-K%d", tc.model, tc.h, tc.w, tc.k), func(t *testing.T) {
			m := smallModel(t, tc.model, tc.c, tc.h, tc.w)
			checkPerExample(t, m, []int{3 * tc.k, tc.c, tc.h, tc.w}, tc.k, 3)
		})
	}
}

// TestFrozenLayers checks that frozen layers get no gradient and no
// per-example work, and that the backward pass stops below the lowest
// trainable layer.
func TestFrozenLayers(t *testing.T) {
	m := smallModel(t, "cnn-cifar", 3, 32, 32)
	if err := m.FreezeLayers(4); err != nil {
		t.Fatal(err)
	}
	checkPerExample(t, m, []int{3, 3, 32, 32}, 1, 8)
	ls := m.GradLayers()
	for i, l := range ls[:4] {
		for _, p := range l.Params() {
			for _, g := range p.Grad {
				if g != 0 {
					t.Fatalf("frozen layer %d (%s) got gradient", i, p.Name)
				}
			}
		}
	}
	// The 5th parameterised layer is the lowest trainable: it computes no dx,
	// and nothing below it runs backward.
	if c := ls[4].(*Conv2d); c.dx != nil {
		t.Errorf("lowest trainable layer computed its input gradient")
	}
	if c := ls[3].(*Conv2d); c.dx != nil || c.dy != nil {
		t.Errorf("frozen layer below the lowest trainable one ran backward")
	}
	if err := m.FreezeLayers(100); err == nil {
		t.Errorf("FreezeLayers(100) on an 8-layer model: want error")
	}
	if err := m.TrainLastLayerOnly(); err != nil || m.NumTrainable() != 128*10+10 {
		t.Errorf("TrainLastLayerOnly: err %v, %d trainable, want %d", err, m.NumTrainable(), 1290)
	}
}
