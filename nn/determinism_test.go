package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"dptrain/internal/par"
	"dptrain/tensor"
)

// Bit-for-bit determinism (DESIGN §2: a seeded run repeats exactly at any
// thread count): every layer's forward pass, backward pass, per-example
// norms and clipped sum must give the same bits on every repetition and at
// every thread count.

// setThreads sets the kernels' thread count until the end of the test.
func setThreads(t *testing.T, n int) {
	t.Helper()
	old := par.SetThreads(n)
	t.Cleanup(func() { par.SetThreads(old) })
}

// bitsOf concatenates the bits of float32 and float64 slices, with a label
// per slice, for exact comparison.
type bitsOf struct {
	labels []string
	vals   [][]uint64
}

func (b *bitsOf) f32(label string, x []float32) {
	v := make([]uint64, len(x))
	for i, f := range x {
		v[i] = uint64(math.Float32bits(f))
	}
	b.labels, b.vals = append(b.labels, label), append(b.vals, v)
}

func (b *bitsOf) f64(label string, x []float64) {
	v := make([]uint64, len(x))
	for i, f := range x {
		v[i] = math.Float64bits(f)
	}
	b.labels, b.vals = append(b.labels, label), append(b.vals, v)
}

// diff returns "" when a and b hold the same bits, else where they differ.
func (b *bitsOf) diff(o *bitsOf) string {
	if len(b.vals) != len(o.vals) {
		return fmt.Sprintf("%d vs %d outputs", len(b.vals), len(o.vals))
	}
	for i := range b.vals {
		if len(b.vals[i]) != len(o.vals[i]) {
			return fmt.Sprintf("%s: %d vs %d values", b.labels[i], len(b.vals[i]), len(o.vals[i]))
		}
		for j := range b.vals[i] {
			if b.vals[i][j] != o.vals[i][j] {
				return fmt.Sprintf("%s[%d] differs (%d of %d outputs)", b.labels[i], j, i, len(b.vals))
			}
		}
	}
	return ""
}

// runStep runs one private step (Forward, BackwardPerExample,
// AccumulateClipped) or, with method "accumulate", one non-private step
// (Forward, Backward) of m, and records everything it produced.
func runStep(m *Model, x, dyLogits *tensor.Tensor, coef []float32, k int, method string) *bitsOf {
	return runStepWith(m, x, dyLogits, coef, k, method, true, nil)
}

// runStepWith is runStep with per-layer norms on or off, calling between
// (when not nil) after the per-example pass and before AccumulateClipped.
func runStepWith(m *Model, x, dyLogits *tensor.Tensor, coef []float32, k int, method string, perLayer bool, between func()) *bitsOf {
	out := &bitsOf{}
	m.ZeroGrad()
	y := m.Forward(x, true)
	out.f32("forward", y.Data)
	if method == "accumulate" {
		m.Backward(dyLogits)
	} else {
		rule, err := ParseNormRule(method)
		if err != nil {
			panic(err)
		}
		forceNorm(m, rule)
		res := m.BackwardPerExample(dyLogits, PerExampleOptions{Group: k, PerLayer: perLayer})
		out.f64("sqnorms", res.SqNorms)
		for i, ln := range res.LayerNorms {
			out.f64(fmt.Sprintf("layer %d norms", i), ln)
		}
		if between != nil {
			between()
		}
		m.AccumulateClipped(coef)
		forceNorm(m, RuleAuto)
	}
	for _, p := range m.Params() {
		out.f32(p.Name+".grad", p.Grad)
	}
	return out
}

// checkDeterministic runs step at 2 threads reps times and at 1, 3 and 4
// threads once each, and fails unless all runs give the same bits.
func checkDeterministic(t *testing.T, reps int, step func() *bitsOf) {
	t.Helper()
	setThreads(t, 2)
	ref := step()
	for i := 1; i < reps; i++ {
		if d := ref.diff(step()); d != "" {
			t.Fatalf("repetition %d at 2 threads: %s", i, d)
		}
	}
	for _, n := range []int{1, 3, 4} {
		par.SetThreads(n)
		if d := ref.diff(step()); d != "" {
			t.Fatalf("%d threads vs 2: %s", n, d)
		}
	}
}

var stepMethods = []string{"accumulate", "materialize-stored", "ghost", "materialize", "auto"}

// TestConvDeterministicAcrossThreads is the review's A3a (conv 16→32 k3 p1,
// batch 64 at 8×8) with an equality assertion, for every norm rule and for
// Accumulate mode, with and without weight standardisation, and with a
// batch of more chunks than reduction slots (160 rows at 8×8: 20 chunks).
func TestConvDeterministicAcrossThreads(t *testing.T) {
	for _, tc := range []struct {
		name          string
		batch, k, hw  int
		ws, bias      bool
		cin, cout, ks int
		stride, pad   int
	}{
		{"A3a", 64, 1, 8, false, true, 16, 32, 3, 1, 1},
		{"A3a-ws", 64, 1, 8, true, true, 16, 32, 3, 1, 1},
		{"20-chunks-K2", 160, 2, 8, false, true, 8, 16, 3, 1, 1},
		{"stride2-ws", 48, 1, 9, true, false, 6, 8, 3, 2, 1},
		// planned weight gradients in several slots and channel blocks
		// (weightTasks(40, 256, 130): 5 slots × 2 blocks)
		{"slots-blocks-130ch", 40, 1, 16, false, true, 6, 130, 3, 1, 1},
	} {
		for _, method := range stepMethods {
			t.Run(fmt.Sprintf("%s/%s", tc.name, method), func(t *testing.T) {
				r := rand.New(rand.NewPCG(41, 42))
				conv := NewConv2d("c", tc.cin, tc.cout, tc.ks, tc.stride, tc.pad, tc.bias, tc.ws, r)
				m := &Model{Name: "conv", InputShape: [3]int{tc.cin, tc.hw, tc.hw}, Layers: []Layer{conv}}
				x := randTensor(r, tc.batch, tc.cin, tc.hw, tc.hw)
				y := m.Forward(x, true)
				dy := randTensor(r, y.Shape...)
				coef := randCoef(r, tc.batch/tc.k)
				checkDeterministic(t, 10, func() *bitsOf {
					out := runStep(m, x, dy, coef, tc.k, method)
					return out
				})
			})
		}
	}
}

// TestConvInputGradientDeterministic checks the input gradient (NeedDX) of
// both backward modes at several thread counts.
func TestConvInputGradientDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	conv := NewConv2d("c", 8, 16, 3, 1, 1, true, true, r)
	x := randTensor(r, 40, 8, 6, 6)
	dy := randTensor(r, conv.Forward(x, true).Shape...)
	for _, mode := range []Mode{Accumulate, PerExample} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			checkDeterministic(t, 10, func() *bitsOf {
				out := &bitsOf{}
				conv.Forward(x, true)
				ctx := &BackwardContext{Mode: mode, NeedDX: true, SqNorms: make([]float64, 40)}
				out.f32("dx", conv.Backward(dy, ctx).Data)
				out.f64("sq", ctx.SqNorms)
				return out
			})
		})
	}
}

// smallResNet is a resnet-style model at small size: a stem convolution
// with GroupNorm, a basic block with identity shortcut, a downsampling
// block with projection shortcut, and a pre-activation (WS) block, then
// global pooling and a linear head.
func smallResNet(r *rand.Rand, ws bool) *Model {
	return &Model{Name: "small-resnet", InputShape: [3]int{3, 8, 8}, NumClasses: 10, Layers: []Layer{
		NewConv2d("stem", 3, 8, 3, 1, 1, false, ws, r), randGN("stem.gn", 4, 8, r), &ReLU{},
		&Residual{PostReLU: true, Main: []Layer{
			NewConv2d("b1.conv1", 8, 8, 3, 1, 1, false, ws, r), randGN("b1.gn1", 4, 8, r), &ReLU{},
			NewConv2d("b1.conv2", 8, 8, 3, 1, 1, false, ws, r), randGN("b1.gn2", 4, 8, r)}},
		&Residual{PostReLU: true,
			Main: []Layer{
				NewConv2d("b2.conv1", 8, 16, 3, 2, 1, false, ws, r), randGN("b2.gn1", 4, 16, r), &ReLU{},
				NewConv2d("b2.conv2", 16, 16, 3, 1, 1, false, ws, r), randGN("b2.gn2", 4, 16, r)},
			Shortcut: []Layer{NewConv2d("b2.down", 8, 16, 1, 2, 0, false, ws, r), randGN("b2.down.gn", 4, 16, r)}},
		&Residual{ShortcutOnPre: true,
			Pre:      []Layer{randGN("b3.gn1", 4, 16, r), &ReLU{}},
			Main:     []Layer{NewConv2d("b3.conv1", 16, 16, 3, 1, 1, false, true, r), randGN("b3.gn2", 4, 16, r), &ReLU{}, NewConv2d("b3.conv2", 16, 16, 3, 1, 1, false, true, r)},
			Shortcut: []Layer{NewConv2d("b3.short", 16, 16, 1, 1, 0, false, true, r)}},
		&GlobalAvgPool{}, NewLinear("fc", 16, 10, true, r),
	}}
}

// TestModelsDeterministicAcrossThreads: whole models, private steps under
// every rule (and the automatic choice) and non-private steps: cnn-mnist,
// the small ResNet above with and without WS, with multiplicity 2, and
// cnn-cifar at 32², whose 3×3 layers run Winograd products.
func TestModelsDeterministicAcrossThreads(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(r *rand.Rand) *Model
		rows  int
		k     int
	}{
		{"cnn-mnist", func(*rand.Rand) *Model { return smallModel(t, "cnn-mnist", 1, 28, 28) }, 24, 1},
		{"small-resnet", func(r *rand.Rand) *Model { return smallResNet(r, false) }, 24, 1},
		{"small-resnet-ws-K2", func(r *rand.Rand) *Model { return smallResNet(r, true) }, 24, 2},
		// conv2 (32→32 at 32²) runs Winograd where the kernels have it
		{"cnn-cifar-winograd", func(*rand.Rand) *Model { return smallModel(t, "cnn-cifar", 3, 32, 32) }, 12, 1},
	} {
		for _, method := range stepMethods {
			t.Run(fmt.Sprintf("%s/%s", tc.name, method), func(t *testing.T) {
				r := rand.New(rand.NewPCG(45, 46))
				m := tc.build(r)
				x := randTensor(r, tc.rows, m.InputShape[0], m.InputShape[1], m.InputShape[2])
				var loss SoftmaxCrossEntropy
				labels := make([]int, tc.rows)
				for i := range labels {
					labels[i] = r.IntN(10)
				}
				loss.Forward(m.Forward(x, true), labels)
				dy := loss.Backward([]float32{1 / float32(tc.k)})
				dy = tensorOf(toF64(dy.Data), dy.Shape...) // own copy
				coef := randCoef(r, tc.rows/tc.k)
				checkDeterministic(t, 10, func() *bitsOf { return runStep(m, x, dy, coef, tc.k, method) })
			})
		}
	}
}

// TestLinearAndGroupNormDeterministic covers the layers whose parallel
// loops are Sgemm's fixed blocks (Linear) and per-group loops (GroupNorm),
// at sizes that take the parallel GEMM path.
func TestLinearAndGroupNormDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	for _, tc := range []struct {
		name  string
		layer Layer
		in    []int
	}{
		{"linear-256x300→70", NewLinear("l", 300, 70, true, r), []int{256, 300, 1, 1}},
		{"groupnorm", randGN("g", 4, 16, r), []int{32, 16, 6, 6}},
	} {
		for _, method := range []string{"accumulate", "auto"} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				m := &Model{Name: tc.name, InputShape: [3]int{tc.in[1], tc.in[2], tc.in[3]}, Layers: []Layer{tc.layer}}
				if _, ok := tc.layer.(*Linear); ok {
					m.Layers = []Layer{&Flatten{}, tc.layer}
				}
				x := randTensor(r, tc.in...)
				dy := randTensor(r, m.Forward(x, true).Shape...)
				coef := randCoef(r, tc.in[0])
				checkDeterministic(t, 10, func() *bitsOf { return runStep(m, x, dy, coef, 1, method) })
			})
		}
	}
}

// TestScatteringDeterministicAcrossThreads: the scattering maps of a batch,
// with and without the memo, repeated and at 1–4 threads.
func TestScatteringDeterministicAcrossThreads(t *testing.T) {
	r := rand.New(rand.NewPCG(49, 50))
	x := randTensor(r, 6, 2, 16, 16)
	copy(x.Data[5*512:], x.Data[:512]) // a repeated image within the batch
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("memo=%v", cached), func(t *testing.T) {
			s := NewScattering(2, 16, 16, 2, 4)
			if cached {
				s.CacheBytes = 1 << 20
			}
			checkDeterministic(t, 10, func() *bitsOf {
				out := &bitsOf{}
				out.f32("maps", s.Forward(x, true).Data)
				return out
			})
		})
	}
}
