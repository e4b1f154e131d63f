package nn

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"dptrain/tensor"
)

// scaleLayer is a custom layer with a trainable parameter but no
// per-example rule (not a GradLayer): y = s·x. Its gradient would escape
// clipping.
type scaleLayer struct {
	s *Param
	x *tensor.Tensor
	y *tensor.Tensor
}

func newScaleLayer() *scaleLayer {
	p := newParam("custom.scale", true, 1)
	p.Value[0] = 2
	return &scaleLayer{s: p}
}

func (l *scaleLayer) Describe() string { return "scale" }
func (l *scaleLayer) Params() []*Param { return []*Param{l.s} }
func (l *scaleLayer) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	l.x = x
	l.y = tensor.Ensure(l.y, x.Shape...)
	for i, v := range x.Data {
		l.y.Data[i] = l.s.Value[0] * v
	}
	return l.y
}
func (l *scaleLayer) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	if !ctx.NeedDX {
		return nil
	}
	dx := tensor.New(dy.Shape...)
	for i, v := range dy.Data {
		dx.Data[i] = l.s.Value[0] * v
	}
	return dx
}

// silentLinear is a GradLayer that forgets to register its per-example
// norms: a programming error that CheckCoverage catches.
type silentLinear struct{ *Linear }

func (l silentLinear) Backward(dy *tensor.Tensor, ctx *BackwardContext) *tensor.Tensor {
	sub := *ctx
	sub.SqNorms = make([]float64, len(ctx.SqNorms))
	sub.Layers, sub.LayerNorms = nil, nil
	return l.Linear.Backward(dy, &sub)
}

func coverageModel(custom Layer, r *rand.Rand) *Model {
	return &Model{Name: "custom-net", InputShape: [3]int{2, 3, 3}, NumClasses: 4, Layers: []Layer{
		NewConv2d("conv", 2, 2, 3, 1, 1, true, false, r),
		&Residual{Main: []Layer{custom}},
		&Flatten{}, NewLinear("fc", 18, 4, true, r),
	}}
}

// TestValidateRejectsUnclippedParameters: a layer that is not a GradLayer
// but owns a trainable parameter (here inside a residual block) is
// rejected, the error naming the parameter and the layer; frozen, it is
// accepted.
func TestValidateRejectsUnclippedParameters(t *testing.T) {
	r := rand.New(rand.NewPCG(91, 92))
	custom := newScaleLayer()
	m := coverageModel(custom, r)
	err := Validate(m)
	if err == nil {
		t.Fatal("Validate accepted a model with a trainable parameter outside every per-example rule")
	}
	for _, want := range []string{"custom.scale", "1.main.0", "scale", "escape clipping"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not mention %q", err, want)
		}
	}
	custom.s.Frozen = true
	if err := Validate(m); err != nil {
		t.Errorf("frozen custom parameter: %v", err)
	}
	for _, name := range []string{"cnn-mnist", "cnn-cifar", "wrn-16-4", "resnet18", "scatternet-cnn"} {
		cfg := ModelConfig{Name: name, NumClasses: 10, InputShape: [3]int{3, 32, 32}}
		if mm, err := NewModel(cfg); err != nil {
			t.Fatal(err)
		} else if err := Validate(mm); err != nil {
			t.Errorf("built-in model %s rejected: %v", name, err)
		}
	}
}

// TestBackwardPerExampleChecksCoverage: BackwardPerExample panics with a
// *CoverageError when the layers that registered per-example norms do not
// cover every trainable parameter (a custom layer with a trainable
// parameter, a GradLayer that does not register), and CheckCoverage
// reports parameters covered twice.
func TestBackwardPerExampleChecksCoverage(t *testing.T) {
	r := rand.New(rand.NewPCG(93, 94))
	x := randTensor(r, 3, 2, 3, 3)
	run := func(m *Model) (err error) {
		defer func() {
			if p := recover(); p != nil {
				e, ok := p.(*CoverageError)
				if !ok {
					panic(p)
				}
				err = e
			}
		}()
		y := m.Forward(x, true)
		m.BackwardPerExample(randTensor(r, y.Shape...), PerExampleOptions{})
		return nil
	}
	custom := newScaleLayer()
	m := coverageModel(custom, r)
	err := run(m)
	var ce *CoverageError
	if !errors.As(err, &ce) || len(ce.Missing) != 1 || ce.Missing[0] != "custom.scale" {
		t.Fatalf("custom trainable layer: got %v, want a CoverageError naming custom.scale", err)
	}
	custom.s.Frozen = true
	if err := run(m); err != nil {
		t.Fatalf("frozen custom layer: %v", err)
	}

	fc := NewLinear("fc", 18, 4, true, r)
	m2 := &Model{Name: "silent", InputShape: [3]int{2, 3, 3}, Layers: []Layer{&Flatten{}, silentLinear{fc}}}
	if err := run(m2); !errors.As(err, &ce) || len(ce.Missing) != 2 {
		t.Fatalf("GradLayer that does not register: got %v, want both fc parameters missing", err)
	}

	good := coverageModel(newScaleLayer(), r)
	good.Layers[1].(*Residual).Main[0].(*scaleLayer).s.Frozen = true
	if err := run(good); err != nil {
		t.Fatal(err)
	}
	res := &PerExampleResult{Layers: append(append([]GradLayer(nil), good.ctx.Layers...), good.ctx.Layers[0])}
	if err := good.CheckCoverage(res); !errors.As(err, &ce) || len(ce.Repeated) == 0 || len(ce.Missing) != 0 {
		t.Errorf("a layer listed twice: got %v, want its parameters reported as covered twice", err)
	}
	if err := good.CheckCoverage(&PerExampleResult{Layers: good.ctx.Layers}); err != nil {
		t.Errorf("exact coverage: %v", err)
	}
	exact := &PerExampleResult{Layers: good.ctx.Layers}
	// cheap: one pass, no allocation but the slices the layers' Params
	// methods return.
	if a := testing.AllocsPerRun(20, func() { good.CheckCoverage(exact) }); a > float64(len(exact.Layers)) {
		t.Errorf("CheckCoverage allocates %v times per call for %d layers", a, len(exact.Layers))
	}
}
