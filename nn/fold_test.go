package nn_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"dptrain/nn"
	"dptrain/tensor"
)

// TestFoldBatchNorm: folding the frozen BatchNorms of frozen ResNets into
// their convolutions leaves the logits unchanged (float32 rounding), and
// leaves a BatchNorm whose γ or β is trained in place.
func TestFoldBatchNorm(t *testing.T) {
	for _, tc := range []struct {
		model string
		norm  string
		bns   int
	}{
		{"resnet18", "batch", 20},
		{"resnet50-keras", "", 53},
	} {
		t.Run(tc.model, func(t *testing.T) {
			cfg := nn.ModelConfig{Name: tc.model, Norm: tc.norm, NumClasses: 10, InputShape: [3]int{3, 32, 32}, Seed: 2}
			m, err := nn.NewModel(cfg)
			if err != nil {
				t.Fatal(err)
			}
			randomizeBatchNorm(m, rand.New(rand.NewPCG(1, 2)))
			f, err := nn.NewModel(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range f.Params() {
				copy(p.Value, m.Params()[i].Value)
			}
			// Train layer4's last BatchNorm: it must stay.
			kept := 0
			for _, p := range f.Params() {
				p.Frozen = true
				if p.Name == "layer4.1.bn2.weight" || p.Name == "layer4.2.bn3.weight" {
					p.Frozen = false
					kept++
				}
			}
			if got := nn.FoldBatchNorm(f); got != tc.bns-kept {
				t.Errorf("folded %d BatchNorms, want %d", got, tc.bns-kept)
			}
			if err := nn.Validate(f); err != nil {
				t.Fatal(err)
			}
			x := tensor.New(2, 3, 32, 32)
			r := rand.New(rand.NewPCG(5, 6))
			for i := range x.Data {
				x.Data[i] = float32(r.NormFloat64())
			}
			want := append([]float32(nil), m.Forward(x, false).Data...)
			got := f.Forward(x, false).Data
			var worst, scale float64
			for i := range want {
				worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
				scale = math.Max(scale, math.Abs(float64(want[i])))
			}
			if worst > 1e-4*(1+scale) {
				t.Errorf("folded logits differ by %.3g (max |logit| %.3g)", worst, scale)
			}
		})
	}
}
