package nn_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"dptrain/nn"
	"dptrain/nn/nntest"
)

// checkEveryRule runs nntest.CheckPerExample on m (in[0]/k examples of k
// rows) with the automatic choice of norm rule, then with every
// convolution forced to each rule in turn.
func checkEveryRule(t *testing.T, m *nn.Model, in []int, k int, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	for _, rule := range []nn.NormRule{nn.RuleAuto, nn.RuleGhost, nn.RuleMaterialize, nn.RuleMaterializeStored} {
		for _, l := range m.GradLayers() {
			if c, ok := l.(*nn.Conv2d); ok {
				c.ForceNorm = rule
			}
		}
		nntest.CheckPerExample(t, m, in, k, r)
	}
	for _, l := range m.GradLayers() {
		if c, ok := l.(*nn.Conv2d); ok {
			c.ForceNorm = nn.RuleAuto
		}
	}
}

// TestPerExampleLayers runs every layer case with parameters, alone in a
// model, through nntest.CheckPerExample under every norm rule, with one
// row and with two rows per example.
func TestPerExampleLayers(t *testing.T) {
	for _, tc := range layerCases() {
		for _, k := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/K=%d", tc.name, k), func(t *testing.T) {
				l := tc.build(rand.New(rand.NewPCG(11, uint64(len(tc.name)))))
				if len(l.Params()) == 0 {
					t.Skip("no parameters")
				}
				m := nntest.LayerModel(l, tc.in[1:]...)
				checkEveryRule(t, m, []int{3 * k, m.InputShape[0], m.InputShape[1], m.InputShape[2]}, k, 5)
			})
		}
	}
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
		// Frozen-statistics BatchNorm in a whole ResNet (its layer rule is
		// checked on its own in -short by the layer cases above).
		cases = append(cases, struct {
			model   string
			c, h, w int
			k       int
		}{"resnet18/batch", 3, 16, 16, 2})
		cases = append(cases, struct {
			model   string
			c, h, w int
			k       int
		}{"resnet18", 3, 32, 32, 1}, struct {
			model   string
			c, h, w int
			k       int
		}{"wrn-16-4", 3, 32, 32, 2}, struct {
			model   string
			c, h, w int
			k       int
		}{"resnet50-keras", 3, 16, 16, 2})
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s-%dx%d-K%d", strings.ReplaceAll(tc.model, "/", "-"), tc.h, tc.w, tc.k), func(t *testing.T) {
			name, norm, _ := strings.Cut(tc.model, "/")
			m, err := nn.NewModel(nn.ModelConfig{Name: name, Norm: norm, NumClasses: 10, InputShape: [3]int{tc.c, tc.h, tc.w}, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			randomizeBatchNorm(m, rand.New(rand.NewPCG(3, 4)))
			checkEveryRule(t, m, []int{3 * tc.k, tc.c, tc.h, tc.w}, tc.k, 3)
		})
	}
}

// TestFrozenLayers checks that frozen layers get no gradient and no
// per-example work, and that the backward pass stops below the lowest
// trainable layer.
func TestFrozenLayers(t *testing.T) {
	m := nn.SmallModel(t, "cnn-cifar", 3, 32, 32)
	if err := m.FreezeLayers(4); err != nil {
		t.Fatal(err)
	}
	checkEveryRule(t, m, []int{3, 3, 32, 32}, 1, 8)
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
	if dx, _ := nn.ConvRanBackward(ls[4].(*nn.Conv2d)); dx {
		t.Errorf("lowest trainable layer computed its input gradient")
	}
	if dx, perExample := nn.ConvRanBackward(ls[3].(*nn.Conv2d)); dx || perExample {
		t.Errorf("frozen layer below the lowest trainable one ran backward")
	}
	if err := m.FreezeLayers(100); err == nil {
		t.Errorf("FreezeLayers(100) on an 8-layer model: want error")
	}
	if err := m.TrainLastLayerOnly(); err != nil || m.NumTrainable() != 128*10+10 {
		t.Errorf("TrainLastLayerOnly: err %v, %d trainable, want %d", err, m.NumTrainable(), 1290)
	}
}

// randomizeBatchNorm gives every frozen BatchNorm of m random statistics
// and affine parameters, so that the checks see more than the identity.
func randomizeBatchNorm(m *nn.Model, r *rand.Rand) {
	nn.Walk(m.Layers, func(_ string, l nn.Layer) bool {
		if b, ok := l.(*nn.BatchNorm2d); ok {
			for i := 0; i < b.C; i++ {
				b.Gamma.Value[i] = float32(1 + 0.3*r.NormFloat64())
				b.Beta.Value[i] = float32(0.3 * r.NormFloat64())
				b.Mean.Value[i] = float32(0.3 * r.NormFloat64())
				b.Var.Value[i] = float32(0.5 + r.Float64())
			}
		}
		return true
	})
}
