package nn

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

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

// timedLayer accumulates the wall time of a layer's Forward and Backward.
type timedLayer struct {
	Layer
	path     string
	fwd, bwd time.Duration
	children []*timedLayer // for a Residual: its timed sublayers
}

func (t *timedLayer) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	t0 := time.Now()
	y := t.Layer.Forward(x, train)
	t.fwd += time.Since(t0)
	return y
}

func (t *timedLayer) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	t0 := time.Now()
	dx := t.Layer.Backward(dy, ctx)
	t.bwd += time.Since(t0)
	return dx
}

// self is the time spent in the layer itself, outside its timed sublayers
// (for a Residual: the sum, the final ReLU and their gradients).
func (t *timedLayer) self() (f, b time.Duration) {
	f, b = t.fwd, t.bwd
	for _, c := range t.children {
		f -= c.fwd
		b -= c.bwd
	}
	return f, b
}

// timeLayers wraps every layer of ls, and the sublayers of residual blocks,
// in timers; it returns all timers in forward order.
func timeLayers(ls []Layer, prefix string) []*timedLayer {
	var all []*timedLayer
	for i, l := range ls {
		t := &timedLayer{Layer: l, path: fmt.Sprintf("%s%d", prefix, i)}
		all = append(all, t)
		if r, ok := l.(*Residual); ok {
			for _, part := range []struct {
				name string
				ls   []Layer
			}{{"pre", r.Pre}, {"main", r.Main}, {"short", r.Shortcut}} {
				sub := timeLayers(part.ls, t.path+"."+part.name)
				for j, s := range sub[:len(part.ls)] {
					part.ls[j] = s
				}
				for _, s := range sub {
					if strings.Count(s.path, ".") == strings.Count(t.path, ".")+1 {
						t.children = append(t.children, s)
					}
				}
				all = append(all, sub...)
			}
		}
		ls[i] = t
	}
	return all
}

// BenchmarkLayerTimes breaks a training step (forward, backward; private:
// per-example norms, then the clipped sum) down by layer: with -v it logs
// each layer's forward and backward milliseconds per step (private: and its
// share of the clipped sum, "clip") and the totals by kind of layer (conv,
// groupnorm, activation, …), and reports the share of convolutions as a
// metric.
func BenchmarkLayerTimes(b *testing.B) {
	for _, tc := range []struct {
		model              string
		chans, size, batch int
	}{{"scatternet-cnn", 1, 28, 512}, {"scatternet-cnn", 3, 32, 512}, {"cnn-cifar", 3, 32, 256}, {"wrn-16-4", 3, 32, 128}, {"resnet18", 3, 32, 128}, {"resnet18", 3, 224, 16}, {"resnet18", 3, 224, 32}} {
		for _, private := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s-%d-b%d-private=%v", tc.model, tc.size, tc.batch, private), func(b *testing.B) {
				m, err := NewModel(ModelConfig{Name: tc.model, NumClasses: 10, InputShape: [3]int{tc.chans, tc.size, tc.size}, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				timers := timeLayers(m.Layers, "")
				r := rand.New(rand.NewPCG(1, 1))
				x := tensor.New(tc.batch, tc.chans, tc.size, tc.size)
				for i := range x.Data {
					x.Data[i] = float32(r.NormFloat64())
				}
				labels := make([]int, tc.batch)
				coef := make([]float32, tc.batch)
				for i := range coef {
					coef[i] = 0.5
				}
				var loss SoftmaxCrossEntropy
				var clip time.Duration
				clipOf := map[Layer]time.Duration{} // each layer's share of the clipped sum
				step := func() {
					loss.Forward(m.Forward(x, true), labels)
					dy := loss.Backward([]float32{1})
					m.ZeroGrad()
					if private {
						m.BackwardPerExample(dy, PerExampleOptions{})
						// Model.AccumulateClipped, one layer at a time.
						for _, l := range m.ctx.Layers {
							t0 := time.Now()
							l.AccumulateClipped(coef)
							d := time.Since(t0)
							clip += d
							clipOf[l] += d
						}
					} else {
						m.Backward(dy)
					}
				}
				step()
				for _, t := range timers {
					t.fwd, t.bwd = 0, 0
				}
				clip = 0
				clear(clipOf)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					step()
				}
				total := b.Elapsed()
				per := func(d time.Duration) float64 { return d.Seconds() * 1e3 / float64(b.N) }
				kinds := map[string]time.Duration{}
				var lines []string
				for _, t := range timers {
					f, bw := t.self()
					kind := strings.Fields(t.Describe())[0]
					if _, ok := t.Layer.(*Residual); ok {
						kind = "residual-add"
					}
					kinds[kind] += f + bw
					line := fmt.Sprintf("%-16s %-40.40s fwd %8.2f ms  bwd %8.2f ms", t.path, t.Describe(), per(f), per(bw))
					if d, ok := clipOf[t.Layer]; ok {
						line += fmt.Sprintf("  clip %7.2f ms", per(d))
					}
					lines = append(lines, line)
				}
				kinds["clipped-sum"] = clip
				var accounted time.Duration
				for _, d := range kinds {
					accounted += d
				}
				kinds["other (loss, zero-grad)"] = total - accounted
				names := make([]string, 0, len(kinds))
				for k := range kinds {
					names = append(names, k)
				}
				sort.Slice(names, func(i, j int) bool { return kinds[names[i]] > kinds[names[j]] })
				var sum strings.Builder
				for _, k := range names {
					fmt.Fprintf(&sum, "\n  %-24s %8.1f ms/step  %5.1f%%", k, per(kinds[k]), 100*kinds[k].Seconds()/total.Seconds())
				}
				b.Logf("per layer (ms/step):\n%s\nby kind:%s", strings.Join(lines, "\n"), sum.String())
				b.ReportMetric(float64(tc.batch*b.N)/total.Seconds(), "examples/s")
				b.ReportMetric(100*kinds["conv"].Seconds()/total.Seconds(), "%conv")
			})
		}
	}
}

// normRuleLayers are the convolutions whose timings fitted normCosts: the
// layers of scatternet-cnn and cnn-mnist (MNIST), a ResNet-18 1×1
// downsample, and two ResNet 3×3 layers at CIFAR resolution.
var normRuleLayers = []struct {
	name                               string
	cin, cout, k, stride, pad, hw, bsz int
}{
	{"scatternet-conv1", 81, 64, 3, 1, 1, 7, 512},
	{"scatternet32-conv1", 243, 64, 3, 1, 1, 8, 512},
	{"scatternet-conv2", 64, 64, 3, 1, 1, 3, 512},
	{"cnn-mnist-conv1", 1, 16, 8, 2, 3, 28, 512},
	{"cnn-mnist-conv2", 16, 32, 4, 2, 0, 13, 512},
	{"resnet-down128-256", 128, 256, 1, 2, 0, 16, 128},
	{"resnet-conv128-16x16", 128, 128, 3, 1, 1, 16, 128},
	{"resnet-conv256-8x8", 256, 256, 3, 1, 1, 8, 128},
}

// BenchmarkNormRules times one private backward (per-example norms, input
// gradient, clipped sum) of single convolutions under each per-example norm
// rule, and under the rule chooseRule picks (RuleAuto), whose time should
// be near the best of the three.
func BenchmarkNormRules(b *testing.B) {
	for _, l := range normRuleLayers {
		for _, method := range []NormRule{RuleAuto, RuleMaterializeStored, RuleGhost, RuleMaterialize} {
			b.Run(l.name+"/"+method.String(), func(b *testing.B) {
				r := rand.New(rand.NewPCG(5, uint64(l.cin*l.hw)))
				c := NewConv2d("c", l.cin, l.cout, l.k, l.stride, l.pad, true, false, r)
				c.ForceNorm = method
				x := tensor.New(l.bsz, l.cin, l.hw, l.hw)
				for i := range x.Data {
					x.Data[i] = float32(r.NormFloat64())
				}
				y := c.Forward(x, true)
				dy := tensor.New(y.Shape...)
				for i := range dy.Data {
					dy.Data[i] = float32(r.NormFloat64())
				}
				coef := make([]float32, l.bsz)
				for i := range coef {
					coef[i] = 0.5
				}
				step := func() {
					c.Forward(x, true)
					c.Backward(dy, &BackwardContext{Mode: PerExample, NeedDX: true, SqNorms: make([]float64, l.bsz)})
					c.AccumulateClipped(coef)
				}
				step()
				if method == RuleAuto {
					b.Logf("chose %s", c.NormMethod())
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					step()
				}
				b.ReportMetric(float64(l.bsz*b.N)/b.Elapsed().Seconds(), "examples/s")
			})
		}
	}
}

// BenchmarkFrozenFeatures: the frozen ResNet-50 (Keras layout) up to its
// global pooling, as feature extraction runs it, with its BatchNorms as
// layers and folded into the convolutions; images/s.
func BenchmarkFrozenFeatures(b *testing.B) {
	for _, size := range []int{128, 224} {
		for _, fold := range []bool{false, true} {
			b.Run(fmt.Sprintf("resnet50-keras-%d/fold=%v", size, fold), func(b *testing.B) {
				m, err := NewModel(ModelConfig{Name: "resnet50-keras", NumClasses: 10, InputShape: [3]int{3, size, size}, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range m.Params() {
					p.Frozen = true
				}
				m.Layers = m.Layers[:len(m.Layers)-1] // up to the pooled features
				if fold {
					FoldBatchNorm(m)
				}
				const batch = 16
				x := tensor.New(batch, 3, size, size)
				r := rand.New(rand.NewPCG(1, 2))
				for i := range x.Data {
					x.Data[i] = float32(r.NormFloat64())
				}
				forwardSeq(m.Layers, x, false)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					forwardSeq(m.Layers, x, false)
				}
				b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "images/s")
			})
		}
	}
}
