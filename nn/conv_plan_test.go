package nn_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"dptrain/nn"
	"dptrain/tensor"
)

// convRun is what one Conv2d computes for a batch: the forward output, the
// input gradient and ∇W, ∇b of the non-private backward, the per-example
// squared norms and the clipped sum of the PerExample backward.
type convRun struct {
	y, dx, gw, gb, cw, cb []float32
	sq                    []float64
}

func runConv(t *testing.T, kernels bool, build func() *nn.Conv2d, x, dy *tensor.Tensor, k int, coef []float32) convRun {
	t.Helper()
	was := tensor.UseConvKernels(kernels)
	defer tensor.UseConvKernels(was)
	c := build()
	var out convRun
	out.y = append([]float32(nil), c.Forward(x, true).Data...)
	dx := c.Backward(dy, &nn.BackwardContext{Mode: nn.Accumulate, NeedDX: true})
	out.dx = append([]float32(nil), dx.Data...)
	out.gw = append([]float32(nil), c.W.Grad...)
	if c.B != nil {
		out.gb = append([]float32(nil), c.B.Grad...)
	}
	if got := nn.ConvHasPlans(c); kernels && tensor.ConvKernels != "im2col" && !got {
		t.Fatalf("kernels on (%s) but the layer ran without plans", tensor.ConvKernels)
	} else if !kernels && got {
		t.Fatal("kernels off but the layer ran on plans")
	}
	for _, p := range c.Params() {
		clear(p.Grad)
	}
	c.Forward(x, true)
	ctx := &nn.BackwardContext{Mode: nn.PerExample, Group: k, NeedDX: true, SqNorms: make([]float64, x.Shape[0]/k)}
	c.Backward(dy, ctx)
	out.sq = ctx.SqNorms
	c.AccumulateClipped(coef)
	out.cw = append([]float32(nil), c.W.Grad...)
	if c.B != nil {
		out.cb = append([]float32(nil), c.B.Grad...)
	}
	return out
}

func relErr32(got, want []float32) float64 {
	var e, m float64
	for i := range want {
		e = max(e, math.Abs(float64(got[i])-float64(want[i])))
		m = max(m, math.Abs(float64(want[i])))
	}
	return e / (m + 1e-30)
}

// TestConvKernelsMatchIm2col runs Conv2d layers on the convolution kernels
// and on im2col and GEMM, on batches cut into several chunks (with a
// shorter last one), under every norm rule, with some clip coefficients 0:
// the two agree to float32 rounding. (Each path is also checked against
// the per-example references by TestPerExampleLayers and
// TestPerExampleModels, which run on the default kernels.)
func TestConvKernelsMatchIm2col(t *testing.T) {
	cases := []struct {
		name                             string
		cin, cout, k, stride, pad, b, hw int
		bias, ws                         bool
		group                            int
	}{
		{"k3s1p1-8x8", 8, 16, 3, 1, 1, 20, 8, false, false, 1},
		{"k3s2p1-bias-9x9", 5, 12, 3, 2, 1, 22, 9, true, false, 1},
		{"k1s2-ws", 16, 8, 1, 2, 0, 18, 10, false, true, 2},
		{"k3-ws-bias-group2", 4, 8, 3, 1, 1, 12, 12, true, true, 2},
		{"k7s2p3-stem", 3, 16, 7, 2, 3, 5, 20, false, false, 1},
		// several slots and channel blocks of the weight gradient (weightTasks)
		{"k3-130ch-slots-blocks-bias", 6, 130, 3, 1, 1, 40, 16, true, false, 1},
		{"k1-ws-128ch-blocks-group2", 8, 128, 1, 1, 0, 8, 6, false, true, 2},
		// WS with rows of d = 288 ≥ the C kernels' threshold (tensor.WSRow's vectorised path)
		{"k3-ws-d288-stored", 32, 24, 3, 1, 1, 6, 8, true, true, 1},
		// products computed by Winograd (tensor.ConvShape.WinogradOps):
		// all three without WS, backward only with it
		{"k3-winograd-28x28-bias", 16, 32, 3, 1, 1, 4, 28, true, false, 1},
		{"k3-winograd-ws-group2", 16, 16, 3, 1, 1, 4, 28, false, true, 2},
	}
	if s, b := nn.WeightTasks(40, 16*16, 130); s < 2 || b < 2 {
		t.Fatalf("weightTasks(40, 256, 130) = %d slots, %d blocks: the cases below no longer cover several of each", s, b)
	}
	for _, tc := range cases {
		for _, rule := range []nn.NormRule{nn.RuleAuto, nn.RuleGhost, nn.RuleMaterialize, nn.RuleMaterializeStored} {
			t.Run(fmt.Sprintf("%s/%v", tc.name, rule), func(t *testing.T) {
				r := rand.New(rand.NewPCG(7, uint64(tc.b)))
				build := func() *nn.Conv2d {
					c := nn.NewConv2d("c", tc.cin, tc.cout, tc.k, tc.stride, tc.pad, tc.bias, tc.ws, rand.New(rand.NewPCG(1, 1)))
					c.ForceNorm = rule
					return c
				}
				oh := tensor.ConvOut(tc.hw, tc.k, tc.stride, tc.pad)
				x := tensor.New(tc.b, tc.cin, tc.hw, tc.hw)
				dy := tensor.New(tc.b, tc.cout, oh, oh)
				for i := range x.Data {
					x.Data[i] = float32(r.NormFloat64())
				}
				for i := range dy.Data {
					dy.Data[i] = float32(r.NormFloat64())
				}
				coef := make([]float32, tc.b/tc.group)
				for i := range coef {
					if i%3 != 1 {
						coef[i] = float32(r.Float64())
					}
				}
				ref := runConv(t, false, build, x, dy, tc.group, coef)
				got := runConv(t, true, build, x, dy, tc.group, coef)
				const tol = 2e-5
				for _, c := range []struct {
					what      string
					got, want []float32
				}{{"forward", got.y, ref.y}, {"input gradient", got.dx, ref.dx}, {"∇W", got.gw, ref.gw}, {"∇b", got.gb, ref.gb},
					{"clipped ∇W", got.cw, ref.cw}, {"clipped ∇b", got.cb, ref.cb}} {
					if e := relErr32(c.got, c.want); !(e < tol) {
						t.Errorf("%s: relative difference %.3g, want < %g", c.what, e, tol)
					}
				}
				for i, v := range ref.sq {
					if !(math.Abs(got.sq[i]-v) <= 1e-5*v) {
						t.Errorf("example %d: squared norm %.9g on kernels, %.9g on im2col", i, got.sq[i], v)
					}
				}
			})
		}
	}
}

// TestConvKernelsVaryingBatch runs one layer on batches of every size from
// 1 to 110 (as Poisson sampling gives): new call shapes every step, the
// layer's plans dropped and remade past maxPlans, and every result still
// that of im2col and GEMM.
func TestConvKernelsVaryingBatch(t *testing.T) {
	// (ghost, stored and materialise rules in turn; Accumulate and PerExample steps)
	if tensor.ConvKernels == "im2col" {
		t.Skip("no convolution kernels in this build")
	}
	r := rand.New(rand.NewPCG(21, 22))
	newLayer := func() *nn.Conv2d { return nn.NewConv2d("c", 4, 80, 3, 1, 1, true, false, rand.New(rand.NewPCG(1, 1))) }
	planned := newLayer()
	was := tensor.UseConvKernels(false)
	ref := newLayer()
	tensor.UseConvKernels(was)
	dropped := false
	for b := 1; b <= 110; b++ {
		before := nn.ConvPlanCount(planned)
		x := tensor.New(b, 4, 6, 6)
		dy := tensor.New(b, 80, 6, 6)
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64())
		}
		for i := range dy.Data {
			dy.Data[i] = float32(r.NormFloat64())
		}
		coef := make([]float32, b)
		for i := range coef {
			coef[i] = float32(r.Float64())
		}
		rule := []nn.NormRule{nn.RuleGhost, nn.RuleMaterializeStored, nn.RuleMaterialize}[b%3]
		var outs [2][]float32
		for i, c := range []*nn.Conv2d{planned, ref} {
			c.ForceNorm = rule
			for _, p := range c.Params() {
				clear(p.Grad)
			}
			y := c.Forward(x, true)
			dx := c.Backward(dy, &nn.BackwardContext{Mode: nn.Accumulate, NeedDX: true})
			out := append(append(append(append([]float32(nil), y.Data...), dx.Data...), c.W.Grad...), c.B.Grad...)
			for _, p := range c.Params() {
				clear(p.Grad)
			}
			c.Forward(x, true)
			ctx := &nn.BackwardContext{Mode: nn.PerExample, NeedDX: true, SqNorms: make([]float64, b)}
			dx = c.Backward(dy, ctx)
			c.AccumulateClipped(coef)
			outs[i] = append(append(append(out, dx.Data...), c.W.Grad...), c.B.Grad...)
		}
		if !nn.ConvHasPlans(planned) {
			t.Fatalf("batch %d: the layer lost its plans", b)
		}
		if nn.ConvPlanCount(planned) < before {
			dropped = true
		}
		if e := relErr32(outs[0], outs[1]); !(e < 2e-5) {
			t.Fatalf("batch %d: planned and im2col results differ by %.3g (relative)", b, e)
		}
	}
	if !dropped {
		t.Fatalf("the plans were never dropped (%d kept): the test no longer covers remaking them", nn.ConvPlanCount(planned))
	}
}

// TestConvWinogradWhereAllowed checks which products of a layer's plans run
// Winograd: those the shape rule picks among the ones the layer allows,
// never the forward product under weight standardisation (its ghost
// correction bounds a direct sum's rounding) nor the clipped sum of the
// ghost and materialise rules.
func TestConvWinogradWhereAllowed(t *testing.T) {
	probe := tensor.ConvShape{N: 1, Cin: 16, H: 28, W: 28, Cout: 16, K: 3, Stride: 1, Pad: 1, Winograd: tensor.WinogradAll}
	p, err := tensor.NewConvPlan(probe)
	if err != nil || p == nil {
		t.Skipf("no convolution kernels (%s): %v", tensor.ConvKernels, err)
	}
	// Without Winograd kernels on this CPU (no avx512_core) the plans'
	// keys still say what each layer allows; only which kernel runs is
	// left unchecked.
	haveWino := strings.Contains(p.Impl(), "wino")
	products := []tensor.WinogradOps{tensor.WinogradForward, tensor.WinogradBackwardData, tensor.WinogradBackwardWeights}
	for _, ws := range []bool{false, true} {
		for _, rule := range []nn.NormRule{nn.RuleGhost, nn.RuleMaterializeStored} {
			t.Run(fmt.Sprintf("ws=%v/%v", ws, rule), func(t *testing.T) {
				r := rand.New(rand.NewPCG(5, 6))
				c := nn.NewConv2d("c", 16, 32, 3, 1, 1, true, ws, rand.New(rand.NewPCG(1, 1)))
				c.ForceNorm = rule
				x := tensor.New(4, 16, 28, 28)
				dy := tensor.New(4, 32, 28, 28)
				for i := range x.Data {
					x.Data[i] = float32(r.NormFloat64())
				}
				for i := range dy.Data {
					dy.Data[i] = float32(r.NormFloat64())
				}
				c.Forward(x, true)
				c.Backward(dy, &nn.BackwardContext{Mode: nn.Accumulate, NeedDX: true})
				c.Forward(x, true)
				c.Backward(dy, &nn.BackwardContext{Mode: nn.PerExample, NeedDX: true, SqNorms: make([]float64, 4)})
				c.AccumulateClipped([]float32{0.5, 1, 0.25, 1})
				var wino, clipped int
				for s, impl := range nn.ConvPlanImpls(c) {
					if s.Winograd == 0 {
						clipped++
					}
					if ws && s.Winograd&tensor.WinogradForward != 0 {
						t.Errorf("%+v: forward allowed Winograd under WS", s)
					}
					for i, op := range strings.Split(impl, " / ") {
						got, want := strings.Contains(op, "wino"), s.WinogradOps()&products[i] != 0
						if haveWino && got != want || !haveWino && got {
							t.Errorf("%+v: product %d runs %q, want Winograd %v", s, i, op, want)
						}
						if got {
							wino++
						}
					}
				}
				if haveWino && wino == 0 {
					t.Error("no product ran Winograd: the test no longer covers it")
				}
				// The ghost rule's clipped sum has plans of its own, direct.
				if want := rule == nn.RuleGhost; (clipped > 0) != want {
					t.Errorf("%d plans without Winograd (clipped sums), want some: %v", clipped, want)
				}
			})
		}
	}
}
