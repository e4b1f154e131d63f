package nn_test

import (
	"math/rand/v2"
	"testing"

	"dptrain/nn"
	"dptrain/nn/nntest"
)

type layerCase struct {
	name  string
	build func(r *rand.Rand) nn.Layer
	in    []int
}

func convCase(name string, cin, cout, k, s, p int, bias, ws bool, in ...int) layerCase {
	return layerCase{name, func(r *rand.Rand) nn.Layer {
		c := nn.NewConv2d("c", cin, cout, k, s, p, bias, ws, r)
		if bias {
			for i := range c.B.Value {
				c.B.Value[i] = float32(r.NormFloat64())
			}
		}
		return c
	}, in}
}

func layerCases() []layerCase {
	return []layerCase{
		{"linear", func(r *rand.Rand) nn.Layer { return nn.NewLinear("l", 5, 7, true, r) }, []int{3, 5}},
		{"linear-nobias", func(r *rand.Rand) nn.Layer { return nn.NewLinear("l", 4, 3, false, r) }, []int{2, 4}},
		convCase("conv-k3s1p1-bias", 2, 3, 3, 1, 1, true, false, 2, 2, 5, 6),
		convCase("conv-k3s2p1-odd", 2, 3, 3, 2, 1, false, false, 2, 2, 7, 9),
		convCase("conv-k1-direct", 3, 4, 1, 1, 0, true, false, 2, 3, 4, 5),
		convCase("conv-k1s2", 3, 4, 1, 2, 0, false, false, 2, 3, 5, 5),
		convCase("conv-k7s2p3", 1, 2, 7, 2, 3, false, false, 1, 1, 9, 9),
		convCase("conv-k8s2p3", 1, 2, 8, 2, 3, true, false, 2, 1, 10, 10),
		convCase("conv-k4s2", 2, 3, 4, 2, 0, true, false, 2, 2, 7, 7),
		convCase("conv-ws-k3s1p1-bias", 2, 3, 3, 1, 1, true, true, 2, 2, 5, 5),
		convCase("conv-ws-k3s2p1", 3, 4, 3, 2, 1, false, true, 2, 3, 7, 6),
		convCase("conv-ws-k1", 3, 4, 1, 1, 0, false, true, 2, 3, 3, 3),
		{"gn-1group", func(r *rand.Rand) nn.Layer { return nn.RandGN("g", 1, 4, r) }, []int{2, 4, 3, 3}},
		{"gn-2groups", func(r *rand.Rand) nn.Layer { return nn.RandGN("g", 2, 4, r) }, []int{2, 4, 3, 5}},
		{"gn-4groups", func(r *rand.Rand) nn.Layer { return nn.RandGN("g", 4, 8, r) }, []int{2, 8, 3, 5}},
		{"bn-frozen", func(r *rand.Rand) nn.Layer { return nn.RandBN("b", 4, 1e-5, r) }, []int{2, 4, 3, 3}},
		{"bn-frozen-keras-eps", func(r *rand.Rand) nn.Layer { return nn.RandBN("b", 3, 1e-3, r) }, []int{2, 3, 2, 5}},
		{"bn-frozen-beta-only", func(r *rand.Rand) nn.Layer {
			b := nn.RandBN("b", 3, 1e-5, r)
			b.Gamma.Frozen = true
			return b
		}, []int{2, 3, 3, 2}},
		{"bn-frozen-no-affine", func(r *rand.Rand) nn.Layer {
			b := nn.NewBatchNorm2d("b", 3)
			b.UseRunningStats = true
			for i := range b.Var.Value {
				b.Mean.Value[i], b.Var.Value[i] = float32(r.NormFloat64()), float32(0.5+r.Float64())
			}
			return b
		}, []int{2, 3, 3, 2}},
		{"residual-bottleneck-v1-bn", func(r *rand.Rand) nn.Layer {
			return &nn.Residual{PostReLU: true,
				Main: []nn.Layer{nn.NewConv2d("a", 4, 2, 1, 2, 0, true, false, r), nn.RandBN("a.bn", 2, 1e-3, r), &nn.ReLU{},
					nn.NewConv2d("b", 2, 2, 3, 1, 1, true, false, r), nn.RandBN("b.bn", 2, 1e-3, r), &nn.ReLU{},
					nn.NewConv2d("c", 2, 8, 1, 1, 0, true, false, r), nn.RandBN("c.bn", 8, 1e-3, r)},
				Shortcut: []nn.Layer{nn.NewConv2d("d", 4, 8, 1, 2, 0, true, false, r), nn.RandBN("d.bn", 8, 1e-3, r)}}
		}, []int{2, 4, 5, 5}},
		{"standardize", func(r *rand.Rand) nn.Layer { return nn.StatsStandardize("s") }, []int{3, 4, 2, 3}},
		{"relu", func(r *rand.Rand) nn.Layer { return &nn.ReLU{} }, []int{2, 3, 4, 5}},
		{"tanh", func(r *rand.Rand) nn.Layer { return &nn.Tanh{} }, []int{2, 3, 4, 5}},
		{"maxpool-3s2p1", func(r *rand.Rand) nn.Layer { return nn.NewMaxPool(3, 2, 1) }, []int{2, 2, 7, 6}},
		{"maxpool-2s1", func(r *rand.Rand) nn.Layer { return nn.NewMaxPool(2, 1, 0) }, []int{2, 2, 5, 5}},
		{"avgpool-3s2p1", func(r *rand.Rand) nn.Layer { return nn.NewAvgPool(3, 2, 1) }, []int{2, 2, 7, 6}},
		{"avgpool-2s2", func(r *rand.Rand) nn.Layer { return nn.NewAvgPool(2, 2, 0) }, []int{2, 2, 6, 4}},
		{"global-avgpool", func(r *rand.Rand) nn.Layer { return &nn.GlobalAvgPool{} }, []int{2, 3, 3, 4}},
		{"flatten", func(r *rand.Rand) nn.Layer { return &nn.Flatten{} }, []int{2, 3, 2, 2}},
		{"residual-basic-projection", func(r *rand.Rand) nn.Layer {
			return &nn.Residual{PostReLU: true,
				Main:     []nn.Layer{nn.NewConv2d("a", 2, 4, 3, 2, 1, false, false, r), nn.RandGN("b", 2, 4, r), &nn.ReLU{}, nn.NewConv2d("c", 4, 4, 3, 1, 1, false, false, r), nn.RandGN("d", 2, 4, r)},
				Shortcut: []nn.Layer{nn.NewConv2d("e", 2, 4, 1, 2, 0, false, false, r), nn.RandGN("f", 2, 4, r)}}
		}, []int{2, 2, 5, 5}},
		{"residual-basic-identity", func(r *rand.Rand) nn.Layer {
			return &nn.Residual{PostReLU: true,
				Main: []nn.Layer{nn.NewConv2d("a", 3, 3, 3, 1, 1, false, false, r), nn.RandGN("b", 3, 3, r), &nn.ReLU{}, nn.NewConv2d("c", 3, 3, 3, 1, 1, false, false, r), nn.RandGN("d", 1, 3, r)}}
		}, []int{2, 3, 4, 4}},
		{"residual-preact-projection-ws", func(r *rand.Rand) nn.Layer {
			return &nn.Residual{ShortcutOnPre: true,
				Pre:      []nn.Layer{nn.RandGN("a", 2, 2, r), &nn.ReLU{}},
				Main:     []nn.Layer{nn.NewConv2d("b", 2, 4, 3, 2, 1, false, true, r), nn.RandGN("c", 2, 4, r), &nn.ReLU{}, nn.NewConv2d("d", 4, 4, 3, 1, 1, false, true, r)},
				Shortcut: []nn.Layer{nn.NewConv2d("e", 2, 4, 1, 2, 0, false, true, r)}}
		}, []int{2, 2, 5, 5}},
		{"residual-preact-identity", func(r *rand.Rand) nn.Layer {
			return &nn.Residual{
				Pre:  []nn.Layer{nn.RandGN("a", 1, 3, r), &nn.ReLU{}},
				Main: []nn.Layer{nn.NewConv2d("b", 3, 3, 3, 1, 1, false, true, r), nn.RandGN("c", 3, 3, r), &nn.ReLU{}, nn.NewConv2d("d", 3, 3, 3, 1, 1, false, true, r)}}
		}, []int{2, 3, 4, 4}},
	}
}

// TestLayerForwardAndGradients runs every layer case through
// nntest.CheckLayer with the float64 reference: the float32 forward pass
// against the reference, and the backward pass (input and parameter
// gradients) against central finite differences of the reference.
func TestLayerForwardAndGradients(t *testing.T) {
	for _, tc := range layerCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
			l := tc.build(r)
			nntest.CheckLayer(t, l, tc.in, reference(l, tc.in), r)
		})
	}
}

// TestLayerSelfFiniteDifferences runs the layer cases through
// nntest.CheckLayer without a reference, as a layer written outside this
// package would be: finite differences of the layer's own float32 forward
// pass. It checks the harness's tolerances against known-good layers.
func TestLayerSelfFiniteDifferences(t *testing.T) {
	for _, tc := range layerCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(8, uint64(len(tc.name))))
			nntest.CheckLayer(t, tc.build(r), tc.in, nil, r)
		})
	}
}
