package nn

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"dptrain/tensor"
)

// Model is a named network: a sequence of layers from an image batch
// [B, C, H, W] to logits [B, NumClasses].
type Model struct {
	Name       string
	InputShape [3]int // C, H, W
	NumClasses int
	Layers     []Layer
	// RowShape, when not nil, is the shape of one input row, which then
	// need not be an image (the suffix of a model after a cached prefix:
	// see Split).
	RowShape []int

	params []*Param
	ctx    BackwardContext
	arena  gradArena // activation gradients of the backward passes
	// ownBuffers (tests) runs backward passes without the arena, on each
	// layer's own buffers, as direct Layer calls do.
	ownBuffers bool
}

// passArena returns the arena for a backward pass, reset, or nil.
func (m *Model) passArena() *gradArena {
	if m.ownBuffers {
		return nil
	}
	m.arena.reset()
	return &m.arena
}

// coverGen numbers CheckCoverage calls (process-wide, so that marks left
// on a Param by one model's check never match another's).
var coverGen atomic.Uint64

// Params returns every parameter in forward order (cached).
func (m *Model) Params() []*Param {
	if m.params == nil {
		m.params = collectParams(m.Layers)
	}
	return m.params
}

// NumParams counts all parameter values (frozen included).
func (m *Model) NumParams() int {
	n := 0
	for _, p := range m.Params() {
		n += len(p.Value)
	}
	return n
}

// NumTrainable counts parameter values that are not frozen.
func (m *Model) NumTrainable() int {
	n := 0
	for _, p := range m.Params() {
		if !p.Frozen {
			n += len(p.Value)
		}
	}
	return n
}

// Forward computes the logits. The result is owned by the model.
func (m *Model) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	if m.RowShape != nil {
		if len(x.Shape) != len(m.RowShape)+1 || !slices.Equal(x.Shape[1:], m.RowShape) {
			shapePanic("Model.Forward", "%s: input %v, want [B %v]", m.Name, x.Shape, m.RowShape)
		}
		return forwardSeq(m.Layers, x, train)
	}
	if len(x.Shape) != 4 || x.Shape[1] != m.InputShape[0] {
		shapePanic("Model.Forward", "%s: input %v, want [B %d H W]", m.Name, x.Shape, m.InputShape[0])
	}
	return forwardSeq(m.Layers, x, train)
}

// ZeroGrad sets every parameter gradient to 0.
func (m *Model) ZeroGrad() {
	for _, p := range m.Params() {
		clear(p.Grad)
	}
}

// Backward adds the gradient of the loss whose logits-gradient is dy to
// Param.Grad (non-private training). It stops below the lowest trainable
// layer.
func (m *Model) Backward(dy *tensor.Tensor) {
	m.ctx = BackwardContext{Mode: Accumulate, arena: m.passArena()}
	backwardSeq(m.Layers, dy, &m.ctx)
}

// PerExampleOptions configures BackwardPerExample.
type PerExampleOptions struct {
	Group             int  // rows per example (augmentation multiplicity K)
	PerLayer          bool // keep per-layer norms (per-layer clipping)
	MaterializeBudget int  // floats per layer for stored per-example gradients (≤0: default)
}

// PerExampleResult describes the per-example norms of one backward pass.
// Layers covers exactly the model's trainable parameters, each once
// (BackwardPerExample checks it with CheckCoverage), so the clip factors
// computed from SqNorms bound every gradient that AccumulateClipped adds.
type PerExampleResult struct {
	SqNorms    []float64   // ‖g_j‖² over all trainable parameters, one per example
	Layers     []GradLayer // trainable leaves, in backward order
	LayerNorms [][]float64 // per layer ‖g_j^(l)‖² (only with PerLayer)
}

// BackwardPerExample runs the backward pass in PerExample mode and returns
// per-example squared gradient norms; no parameter gradient is touched until
// AccumulateClipped. The result is owned by the model and valid until the
// next call.
func (m *Model) BackwardPerExample(dy *tensor.Tensor, opt PerExampleOptions) *PerExampleResult {
	k := max(opt.Group, 1)
	b := dy.Shape[0]
	if b%k != 0 {
		shapePanic("Model.BackwardPerExample", "batch %d not a multiple of group %d", b, k)
	}
	ctx := &m.ctx
	ctx.arena = m.passArena()
	ctx.Mode, ctx.Group, ctx.NeedDX, ctx.MaterializeBudget = PerExample, k, false, opt.MaterializeBudget
	ctx.SqNorms = growF64(ctx.SqNorms, b/k)
	ctx.Layers = ctx.Layers[:0]
	if ctx.Layers == nil {
		ctx.Layers = make([]GradLayer, 0, 64)
	}
	if opt.PerLayer {
		ctx.LayerNorms = ctx.LayerNorms[:0]
		if ctx.LayerNorms == nil {
			ctx.LayerNorms = make([][]float64, 0, 64)
		}
	} else {
		ctx.LayerNorms = nil
	}
	backwardSeq(m.Layers, dy, ctx)
	res := &PerExampleResult{SqNorms: ctx.SqNorms, Layers: ctx.Layers, LayerNorms: ctx.LayerNorms}
	if err := m.CheckCoverage(res); err != nil {
		panic(err)
	}
	return res
}

// CoverageError reports trainable parameters that a per-example backward
// pass did not cover, or covered twice: a programming error (a layer that
// is not a GradLayer, or one that does not call AddNorms), since such a
// parameter's gradient would be released without clipping or clipped with
// the wrong norm. BackwardPerExample panics with it.
type CoverageError struct {
	Model             string
	Missing, Repeated []string // parameter names
}

func (e *CoverageError) Error() string {
	return fmt.Sprintf("nn: model %s: per-example rules do not cover the trainable parameters exactly (not covered: %v; covered twice: %v)", e.Model, e.Missing, e.Repeated)
}

// CheckCoverage verifies that the layers of res (the GradLayers that
// reported per-example norms, BackwardContext.AddNorms, in a
// BackwardPerExample of m) own exactly
// the model's trainable parameters, each once. It returns a *CoverageError
// otherwise. It costs one pass over the parameters (marking each with a
// process-wide generation number) and allocates nothing when coverage is
// exact, beyond the slices the layers' Params methods return.
func (m *Model) CheckCoverage(res *PerExampleResult) error {
	gen := coverGen.Add(1)
	var e *CoverageError
	for _, l := range res.Layers {
		for _, p := range l.Params() {
			if p.Frozen {
				continue
			}
			if p.cover == gen {
				if e == nil {
					e = &CoverageError{Model: m.Name}
				}
				e.Repeated = append(e.Repeated, p.Name)
			}
			p.cover = gen
		}
	}
	for _, p := range m.Params() {
		if !p.Frozen && p.cover != gen {
			if e == nil {
				e = &CoverageError{Model: m.Name}
			}
			e.Missing = append(e.Missing, p.Name)
		}
	}
	if e != nil {
		return e
	}
	return nil
}

// AccumulateClipped adds Σ_j coef[j]·g_j to Param.Grad for the layers of the
// last BackwardPerExample (flat clipping: one coefficient per example).
func (m *Model) AccumulateClipped(coef []float32) {
	for _, l := range m.ctx.Layers {
		l.AccumulateClipped(coef)
	}
}

// GradLayers lists the GradLayers with parameters (frozen or not) in
// forward order (Walk's).
func (m *Model) GradLayers() []GradLayer {
	var out []GradLayer
	Walk(m.Layers, func(_ string, l Layer) bool {
		if _, ok := l.(Container); ok {
			return true
		}
		if g, ok := l.(GradLayer); ok && len(g.Params()) > 0 {
			out = append(out, g)
		}
		return false
	})
	return out
}

// FreezeLayers freezes the parameters of the first n parameterised leaf
// layers in forward order (convolutions, normalisations, linear layers each
// count one), as in the paper's transfer-learning runs. n larger than the
// number of such layers is an error.
func (m *Model) FreezeLayers(n int) error {
	ls := m.GradLayers()
	if n < 0 || n > len(ls) {
		return fmt.Errorf("freeze-layers %d: model %s has %d parameterised layers", n, m.Name, len(ls))
	}
	for i, l := range ls {
		for _, p := range l.Params() {
			if !p.Buffer {
				p.Frozen = i < n
			}
		}
	}
	return nil
}

// FreezePrefixes freezes every parameter whose name is one of prefixes or
// starts with one of them followed by a dot ("layer1" freezes
// layer1.0.conv1.weight, not layer10.…), and leaves the others as they are.
// A prefix that names no parameter is an error (a typo would otherwise
// train what was meant to be frozen).
func (m *Model) FreezePrefixes(prefixes []string) error {
	for _, pre := range prefixes {
		if pre == "" {
			return fmt.Errorf("freeze: empty layer name")
		}
		found := false
		for _, p := range m.Params() {
			if p.Name == pre || strings.HasPrefix(p.Name, pre+".") {
				p.Frozen, found = true, true
			}
		}
		if !found {
			return fmt.Errorf("freeze: %q names no parameter of model %s (names look like %s)", pre, m.Name, strings.Join(m.topNames(), ", "))
		}
	}
	return nil
}

// topNames lists the distinct first components of the parameter names
// (conv1, bn1, layer1, …, fc), in order.
func (m *Model) topNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range m.Params() {
		top, _, _ := strings.Cut(p.Name, ".")
		if !seen[top] {
			seen[top] = true
			out = append(out, top)
		}
	}
	return out
}

// TrainLastLayerOnly freezes everything but the final linear layer.
func (m *Model) TrainLastLayerOnly() error {
	ls := m.GradLayers()
	return m.FreezeLayers(len(ls) - 1)
}

// Describe lists the layers.
func (m *Model) Describe() string {
	return fmt.Sprintf("%s %v→%d: %s", m.Name, m.InputShape, m.NumClasses, (&Sequential{m.Layers}).Describe())
}

// Split cuts the model before its top-level layer cut: prefix runs
// Layers[:cut] on images, suffix runs Layers[cut:] on rows of shape
// rowShape (what the prefix outputs for one image). Both share the
// model's layers and parameters.
func (m *Model) Split(cut int, rowShape []int) (prefix, suffix *Model) {
	if cut < 0 || cut > len(m.Layers) {
		shapePanic("Model.Split", "%s: cut %d of %d layers", m.Name, cut, len(m.Layers))
	}
	prefix = &Model{Name: m.Name + " (prefix)", InputShape: m.InputShape, NumClasses: m.NumClasses, Layers: m.Layers[:cut:cut]}
	suffix = &Model{Name: m.Name + " (suffix)", InputShape: m.InputShape, NumClasses: m.NumClasses, Layers: m.Layers[cut:],
		RowShape: append([]int(nil), rowShape...)}
	return prefix, suffix
}
