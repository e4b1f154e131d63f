package dpsgd

import (
	"math"
	"math/rand/v2"
	"testing"

	"dptrain/accounting"
	"dptrain/nn"
	"dptrain/tensor"
)

func mnistModel(t *testing.T) *nn.Model {
	t.Helper()
	m, err := nn.NewModel(nn.ModelConfig{Name: "cnn-mnist", NumClasses: 10, InputShape: [3]int{1, 28, 28}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// batch returns n examples × k rows; example `outlier` (if ≥ 0) is scaled by
// 1e3 so that its gradient is huge.
func batch(r *rand.Rand, n, k, outlier int) (*tensor.Tensor, []int) {
	x := tensor.New(n*k, 1, 28, 28)
	labels := make([]int, n*k)
	for i := 0; i < n*k; i++ {
		scale := 1.0
		if i/k == outlier {
			scale = 1e3
		}
		for j := 0; j < 28*28; j++ {
			x.Data[i*28*28+j] = float32(r.NormFloat64() * scale)
		}
		labels[i] = r.IntN(10)
	}
	return x, labels
}

func gradVector(m *nn.Model) []float64 {
	var g []float64
	for _, p := range m.Params() {
		for _, v := range p.Grad {
			g = append(g, float64(v))
		}
	}
	return g
}

// TestSensitivity: with σ = 0 and B = 1, removing any one example changes
// the summed update by at most C, also for planted outliers with huge
// gradients, for flat and per-layer clipping and K = 2.
func TestSensitivity(t *testing.T) {
	for _, tc := range []struct {
		name     string
		perLayer bool
		k        int
	}{{"flat", false, 1}, {"per-layer", true, 1}, {"flat-K2", false, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			m := mnistModel(t)
			const clip = 0.1
			step := &PrivateStep{Model: m, Config: PrivacyConfig{ClipNorm: clip, ExpectedBatchSize: 1, PerLayerClipping: tc.perLayer, AugMultiplicity: tc.k}, Noise: NewSeededNoise(1)}
			const n = 6
			x, labels := batch(r, n, tc.k, 2)
			step.Begin()
			step.Accumulate(x, labels)
			st, _ := mustFinish(t, step)
			if st.Examples != n || st.Clipped < 1 || st.MaxNorm < 50*clip {
				t.Fatalf("stats %+v: want %d examples and the outlier clipped", st, n)
			}
			checkLeaveOneOut(t, step, x, labels, n, tc.k, clip, 1e-4)
		})
	}
}

// TestNoiseOncePerLogicalBatch: an empty logical batch still gets exactly
// 𝒩(0, σ²C²)/B on every trainable coordinate (and frozen ones get none).
// With n = 26,000 draws the variance estimate has a relative standard
// error of √(2/n) ≈ 0.9%; the 5% tolerance is > 5 standard errors
// (false-alarm rate < 1e-6, and the seed is fixed).
func TestNoiseOncePerLogicalBatch(t *testing.T) {
	m := mnistModel(t)
	if err := m.FreezeLayers(1); err != nil {
		t.Fatal(err)
	}
	cfg := PrivacyConfig{ClipNorm: 2, NoiseMultiplier: 1.5, ExpectedBatchSize: 10, SamplingRate: 0.01, AugMultiplicity: 1}
	step := &PrivateStep{Model: m, Config: cfg, Noise: NewSeededNoise(9)}
	step.Begin()
	step.Accumulate(tensor.New(0, 1, 28, 28), nil)
	st, ev := mustFinish(t, step)
	if st.Examples != 0 || st.NoiseStd != 3 {
		t.Fatalf("stats %+v", st)
	}
	// The step reports the release it made: q and σ of its config.
	if want := accounting.Step(0.01, 1.5); ev != want {
		t.Fatalf("event %#v, want %#v", ev, want)
	}
	var sum, sq float64
	n := 0
	for _, p := range m.Params() {
		for _, v := range p.Grad {
			if p.Frozen {
				if v != 0 {
					t.Fatalf("frozen %s got noise", p.Name)
				}
				continue
			}
			sum += float64(v)
			sq += float64(v) * float64(v)
			n++
		}
	}
	want := 1.5 * 2 / 10.0
	gotStd := math.Sqrt(sq / float64(n))
	if math.Abs(gotStd/want-1) > 0.05 {
		t.Errorf("noise std %g, want σC/B = %g", gotStd, want)
	}
	if math.Abs(sum/float64(n)) > 5*want/math.Sqrt(float64(n)) {
		t.Errorf("noise mean %g, want 0 ± %g", sum/float64(n), 5*want/math.Sqrt(float64(n)))
	}
}

// TestPrivateMatchesPublicWithoutClipping: with a clip norm far above every
// gradient and σ = 0, the private step equals the public mean gradient
// (times realised/expected size).
func TestPrivateMatchesPublicWithoutClipping(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	m := mnistModel(t)
	x, labels := batch(r, 5, 1, -1)
	// The public mean gradient, by an ordinary backward pass.
	m.ZeroGrad()
	var loss nn.SoftmaxCrossEntropy
	loss.Forward(m.Forward(x, true), labels)
	m.Backward(loss.Backward([]float32{1}))
	want := gradVector(m)
	for i := range want {
		want[i] /= 5
	}
	priv := &PrivateStep{Model: m, Config: PrivacyConfig{ClipNorm: 1e6, ExpectedBatchSize: 5, AugMultiplicity: 1}, Noise: NewSeededNoise(1)}
	priv.Begin()
	priv.Accumulate(x.Slice0(0, 3), labels[:3])
	priv.Accumulate(x.Slice0(3, 5), labels[3:])
	st, _ := mustFinish(t, priv)
	if st.Clipped != 0 || st.Physical != 2 {
		t.Fatalf("stats %+v", st)
	}
	for i, v := range gradVector(m) {
		if math.Abs(v-want[i]) > 1e-5*(1+math.Abs(want[i])) {
			t.Fatalf("grad[%d] = %g, public %g", i, v, want[i])
		}
	}
}

func TestPrivacyConfigValidate(t *testing.T) {
	ok := PrivacyConfig{ClipNorm: 1, NoiseMultiplier: 1, ExpectedBatchSize: 256, SamplingRate: 0.5, AugMultiplicity: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []PrivacyConfig{
		{ClipNorm: 0, NoiseMultiplier: 1, ExpectedBatchSize: 1, SamplingRate: 0.5, AugMultiplicity: 1},
		{ClipNorm: 1, NoiseMultiplier: -1, ExpectedBatchSize: 1, SamplingRate: 0.5, AugMultiplicity: 1},
		{ClipNorm: 1, NoiseMultiplier: math.NaN(), ExpectedBatchSize: 1, SamplingRate: 0.5, AugMultiplicity: 1},
		{ClipNorm: 1, NoiseMultiplier: 1, ExpectedBatchSize: 0, SamplingRate: 0.5, AugMultiplicity: 1},
		{ClipNorm: 1, NoiseMultiplier: 1, ExpectedBatchSize: 1, SamplingRate: 0.5, AugMultiplicity: 0},
		{ClipNorm: 1, NoiseMultiplier: 1, ExpectedBatchSize: 1, SamplingRate: 0, AugMultiplicity: 1},
		{ClipNorm: 1, NoiseMultiplier: 1, ExpectedBatchSize: 1, SamplingRate: 1.5, AugMultiplicity: 1},
		{ClipNorm: 1, NoiseMultiplier: 1, ExpectedBatchSize: 1, SamplingRate: math.NaN(), AugMultiplicity: 1},
	} {
		if bad.Validate() == nil {
			t.Errorf("%+v: want error", bad)
		}
	}
}

func TestClipFactorsNonFinite(t *testing.T) {
	dst := make([]float32, 5)
	n := ClipFactors(dst, []float64{math.NaN(), math.Inf(1), -1, 0.25, 100}, 1)
	want := []float32{0, 0, 0, 1, float32(1 / (10 + ClipEpsilon))}
	for i := range want {
		if math.Abs(float64(dst[i]-want[i])) > 1e-7 {
			t.Errorf("factor[%d] = %g, want %g", i, dst[i], want[i])
		}
	}
	if n != 4 {
		t.Errorf("clipped %d, want 4", n)
	}
	// Rounded down: c·‖g‖ never exceeds C.
	for _, s := range []float64{3, 7.7, 1e6, 12345.678} {
		ClipFactors(dst[:1], []float64{s}, 0.3)
		if float64(dst[0])*math.Sqrt(s) > 0.3 {
			t.Errorf("‖g‖²=%g: c·‖g‖ = %.10g > C", s, float64(dst[0])*math.Sqrt(s))
		}
	}
}

// TestSensitivityModels repeats the leave-one-out sensitivity check on
// models with weight standardisation + GroupNorm (wrn-16-4), frozen layers
// (resnet18), every per-example norm rule, K = 2 augmentations and a logical
// batch split over two physical batches.
func TestSensitivityModels(t *testing.T) {
	for _, tc := range []struct {
		model  string
		freeze int
		method string
		k      int
	}{
		{"wrn-16-4", 0, "ghost", 2},
		{"wrn-16-4", 0, "materialize", 1},
		{"wrn-16-4", 0, "materialize-stored", 2},
		{"resnet18", 6, "", 1},
	} {
		t.Run(tc.model+"-"+tc.method, func(t *testing.T) {
			rule, err := nn.ParseNormRule(tc.method)
			if err != nil {
				t.Fatal(err)
			}
			m, err := nn.NewModel(nn.ModelConfig{Name: tc.model, NumClasses: 10, InputShape: [3]int{3, 16, 16}, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if tc.freeze > 0 {
				if err := m.FreezeLayers(tc.freeze); err != nil {
					t.Fatal(err)
				}
			}
			for _, l := range m.GradLayers() {
				if c, ok := l.(*nn.Conv2d); ok {
					c.ForceNorm = rule
				}
			}
			r := rand.New(rand.NewPCG(3, 4))
			const n, clip = 4, 0.05
			rows := n * tc.k
			x := tensor.New(rows, 3, 16, 16)
			for i := range x.Data {
				x.Data[i] = float32(r.NormFloat64())
			}
			for j := range x.Data[:tc.k*768] { // example 0: an outlier
				x.Data[j] *= 50
			}
			labels := make([]int, rows)
			for i := range labels {
				labels[i] = r.IntN(10)
			}
			step := &PrivateStep{Model: m, Noise: NewSeededNoise(1), Config: PrivacyConfig{ClipNorm: clip, ExpectedBatchSize: 1, AugMultiplicity: tc.k}}
			// all examples, in two physical batches
			step.Begin()
			step.Accumulate(x.Slice0(0, 2*tc.k), labels[:2*tc.k])
			step.Accumulate(x.Slice0(2*tc.k, rows), labels[2*tc.k:])
			st, _ := mustFinish(t, step)
			if st.Clipped == 0 {
				t.Fatalf("no example clipped (max norm %g): the test would not detect missing clipping", st.MaxNorm)
			}
			twoBatches := gradVector(m)
			full := checkLeaveOneOut(t, step, x, labels, n, tc.k, clip, 1e-3)
			var d, nrm float64
			for i, v := range full {
				d += (v - twoBatches[i]) * (v - twoBatches[i])
				nrm += v * v
			}
			if math.Sqrt(d) > 1e-5*math.Sqrt(nrm) {
				t.Errorf("two physical batches and one give clipped sums %g apart (relative)", math.Sqrt(d/nrm))
			}
		})
	}
}

// checkLeaveOneOut recomputes the step's clipped sum without each of the n
// examples (K rows each) of x, and fails if any removal moves the sum by
// more than C·(1+tol) (σ = 0 and B = 1, so the sum is what Finish leaves).
func checkLeaveOneOut(t *testing.T, step *PrivateStep, x *tensor.Tensor, labels []int, n, k int, clip, tol float64) (full []float64) {
	t.Helper()
	step.Begin()
	step.Accumulate(x, labels)
	mustFinish(t, step)
	full = gradVector(step.Model)
	per := len(x.Data) / x.Shape[0]
	for drop := 0; drop < n; drop++ {
		xs := tensor.New(append([]int{(n - 1) * k}, x.Shape[1:]...)...)
		var ls []int
		o := 0
		for i := 0; i < n*k; i++ {
			if i/k == drop {
				continue
			}
			copy(xs.Data[o*per:(o+1)*per], x.Data[i*per:(i+1)*per])
			ls = append(ls, labels[i])
			o++
		}
		step.Begin()
		step.Accumulate(xs, ls)
		mustFinish(t, step)
		var d float64
		for i, v := range gradVector(step.Model) {
			d += (v - full[i]) * (v - full[i])
		}
		if math.Sqrt(d) > clip*(1+tol) {
			t.Errorf("removing example %d moved the clipped sum by %g > C = %g", drop, math.Sqrt(d), clip)
		}
	}
	return full
}

// mustFinish is Finish in one process, where it cannot fail.
func mustFinish(t *testing.T, s *PrivateStep) (StepStats, accounting.Event) {
	t.Helper()
	st, ev, err := s.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return st, ev
}
