package nntest_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"dptrain/nn"
	"dptrain/nn/nntest"
	"dptrain/tensor"
)

// Scale is a layer defined outside package nn: it multiplies each channel
// of a [B, C, H, W] batch by a trainable factor, y[b,c,·] = s[c]·x[b,c,·].
//
// It is an nn.GradLayer with the direct rule: an example's gradient is C
// numbers, ∇s_j[c] = Σ_{rows of j} Σ_hw dy·x, so it is kept in float32 and
// its squared norm is that of exactly what AccumulateClipped adds,
// scaled up by the rounding bound of its float64 sum of squares
// (nn.SumSquaresBound): never below it.
type Scale struct {
	S *nn.Param

	x, y, dx *tensor.Tensor
	g        []float32 // per-row ∇s (B×C); after a PerExample backward, per example
	sq       []float64
}

// NewScale returns a Scale of c channels with s = 1.
func NewScale(name string, c int) *Scale {
	p := &nn.Param{Name: name + ".scale", Shape: []int{c}, Value: make([]float32, c), Grad: make([]float32, c), NoDecay: true}
	for i := range p.Value {
		p.Value[i] = 1
	}
	return &Scale{S: p}
}

func (s *Scale) Describe() string        { return fmt.Sprintf("scale %d", len(s.S.Value)) }
func (s *Scale) Params() []*nn.Param     { return []*nn.Param{s.S} }
func (s *Scale) Trainable() bool         { return !s.S.Frozen }
func (s *Scale) NormMethod() nn.NormRule { return nn.RuleDirect }

func (s *Scale) Forward(x *tensor.Tensor, train bool) *tensor.Tensor {
	c := len(s.S.Value)
	if len(x.Shape) != 4 || x.Shape[1] != c {
		panic(&tensor.ShapeError{Op: "Scale.Forward", Msg: fmt.Sprintf("input %v, want [B, %d, H, W]", x.Shape, c)})
	}
	s.x = x
	s.y = tensor.Ensure(s.y, x.Shape...)
	hw := x.Shape[2] * x.Shape[3]
	for i := 0; i < x.Shape[0]*c; i++ {
		f := s.S.Value[i%c]
		for j := i * hw; j < (i+1)*hw; j++ {
			s.y.Data[j] = f * x.Data[j]
		}
	}
	return s.y
}

// Backward returns f·dy as the input gradient and, when s is trainable,
// either adds the batch gradient to s.S.Grad (Accumulate) or keeps each
// example's gradient and reports its squared norm (PerExample).
func (s *Scale) Backward(dy *tensor.Tensor, ctx *nn.BackwardContext) *tensor.Tensor {
	b, c, hw := s.x.Shape[0], len(s.S.Value), s.x.Shape[2]*s.x.Shape[3]
	if len(dy.Data) != len(s.x.Data) {
		panic(&tensor.ShapeError{Op: "Scale.Backward", Msg: fmt.Sprintf("dy %v, want %v", dy.Shape, s.x.Shape)})
	}
	if ctx.NeedDX {
		s.dx = tensor.Ensure(s.dx, dy.Shape...)
		for i := 0; i < b*c; i++ {
			f := s.S.Value[i%c]
			for j := i * hw; j < (i+1)*hw; j++ {
				s.dx.Data[j] = f * dy.Data[j]
			}
		}
	}
	if s.Trainable() {
		s.g = tensor.EnsureSlice(s.g, b*c)
		for i := range s.g {
			var sum float64
			for j := i * hw; j < (i+1)*hw; j++ {
				sum += float64(dy.Data[j]) * float64(s.x.Data[j])
			}
			s.g[i] = float32(sum)
		}
		if ctx.Mode == nn.Accumulate {
			for i, v := range s.g {
				s.S.Grad[i%c] += v
			}
		} else {
			s.perExample(b, c, ctx)
		}
	}
	if ctx.NeedDX {
		return s.dx
	}
	return nil
}

// perExample sums the rows of each example into row j of g (example j) and
// reports the examples' squared norms: one AddNorms call per backward pass.
func (s *Scale) perExample(b, c int, ctx *nn.BackwardContext) {
	k := ctx.GroupSize()
	m := b / k
	s.sq = append(s.sq[:0], make([]float64, m)...)
	for j := 0; j < m; j++ {
		var sq float64
		for ch := 0; ch < c; ch++ {
			v := s.g[j*k*c+ch]
			for a := 1; a < k; a++ {
				v += s.g[(j*k+a)*c+ch]
			}
			s.g[j*c+ch] = v
			sq += float64(v) * float64(v)
		}
		s.sq[j] = nn.SumSquaresBound(sq, c)
	}
	ctx.AddNorms(s, s.sq)
}

// AccumulateClipped adds Σ_j coef[j]·∇s_j. An example with coef[j] = 0 is
// skipped, not multiplied by 0: its gradient may be NaN.
func (s *Scale) AccumulateClipped(coef []float32) {
	if s.S.Frozen {
		return
	}
	c := len(s.S.Value)
	for j, cj := range coef {
		if cj == 0 {
			continue
		}
		for ch := 0; ch < c; ch++ {
			s.S.Grad[ch] += cj * s.g[j*c+ch]
		}
	}
}

func randomScale(r *rand.Rand, c int) *Scale {
	s := NewScale("s", c)
	for i := range s.S.Value {
		s.S.Value[i] = float32(1 + 0.5*r.NormFloat64())
	}
	return s
}

// scaleReference is Scale's forward pass in float64, from the definition,
// for c channels of hw pixels.
func scaleReference(c, hw int) nntest.Reference {
	return func(x []float64, ps [][]float64) []float64 {
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = v * ps[0][(i/hw)%c]
		}
		return y
	}
}

// TestScale runs the new layer through the conformance checks: forward and
// backward against its float64 reference and against finite differences
// of its own forward pass, then per-example norms and clipped sums against
// the naive loop over examples, alone and below nn's layers, with one row
// per example and with groups of 2, under every convolution rule.
func TestScale(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	nntest.CheckLayer(t, randomScale(r, 3), []int{2, 3, 4, 5}, scaleReference(3, 20), r)
	nntest.CheckLayer(t, randomScale(r, 3), []int{2, 3, 4, 5}, nil, r)
	for _, k := range []int{1, 2} {
		nntest.CheckPerExample(t, nntest.LayerModel(randomScale(r, 3), 3, 4, 5), []int{3 * k, 3, 4, 5}, k, r)
		conv := nn.NewConv2d("conv", 2, 3, 3, 1, 1, true, false, r)
		m := &nn.Model{Name: "conv-scale-linear", InputShape: [3]int{2, 5, 5}, NumClasses: 4, Layers: []nn.Layer{
			conv, randomScale(r, 3), &nn.ReLU{}, &nn.Flatten{}, nn.NewLinear("fc", 75, 4, true, r),
		}}
		if err := nn.Validate(m); err != nil {
			t.Fatal(err)
		}
		for _, rule := range []nn.NormRule{nn.RuleGhost, nn.RuleMaterialize, nn.RuleMaterializeStored} {
			conv.ForceNorm = rule
			nntest.CheckPerExample(t, m, []int{3 * k, 2, 5, 5}, k, r)
		}
	}
}

// leakyScale is Scale with the bug the coverage check exists for: its
// Backward ignores PerExample mode, adding the batch gradient to Param.Grad
// without reporting any norm, so the gradient would be noised but never
// clipped.
type leakyScale struct{ *Scale }

func (l leakyScale) Backward(dy *tensor.Tensor, ctx *nn.BackwardContext) *tensor.Tensor {
	acc := *ctx
	acc.Mode = nn.Accumulate
	return l.Scale.Backward(dy, &acc)
}

// A layer defined outside nn passes the checks nn's own layers pass, in a
// model with nn's layers; one that forgets to report its per-example norms
// passes Validate (it is a GradLayer) but is refused by CheckCoverage,
// which BackwardPerExample runs.
func Example() {
	t := &recorder{}
	r := rand.New(rand.NewPCG(1, 2))
	nntest.CheckLayer(t, NewScale("s", 3), []int{2, 3, 4, 4}, scaleReference(3, 16), r)
	model := func(scale nn.Layer) *nn.Model {
		return &nn.Model{Name: "conv+scale", InputShape: [3]int{3, 6, 6},
			Layers: []nn.Layer{nn.NewConv2d("conv", 3, 4, 3, 1, 1, true, false, rand.New(rand.NewPCG(3, 4))), scale}}
	}
	nntest.CheckPerExample(t, model(NewScale("s", 4)), []int{6, 3, 6, 6}, 2, r)
	fmt.Println("checks passed:", len(t.msgs) == 0)

	leaky := model(leakyScale{NewScale("s", 4)})
	fmt.Println("Validate:", nn.Validate(leaky))
	err := nntest.Coverage(leaky, []int{4, 3, 6, 6}, 1)
	var ce *nn.CoverageError
	fmt.Println("refused:", errors.As(err, &ce), ce.Missing)
	fmt.Println(leaky.CheckCoverage(&nn.PerExampleResult{}))
	// Output:
	// checks passed: true
	// Validate: <nil>
	// refused: true [s.scale]
	// nn: model conv+scale: per-example rules do not cover the trainable parameters exactly (not covered: [conv.weight conv.bias s.scale]; covered twice: [])
}
