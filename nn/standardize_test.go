package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"dptrain/tensor"
)

// TestStandardizeForwardBackward: y = (x−μ)/√(v+ε) per channel (0 where
// v = 0) against float64, and dx against central differences of Σ y·r.
func TestStandardizeForwardBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const b, c, h, w = 3, 4, 2, 3
	s := NewStandardize("sn", c)
	mean, variance := []float64{0.5, -1, 2, 0}, []float64{4, 0.25, 0, 1e-3}
	if err := s.SetStats(mean, variance); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStats([]float64{0, 0, 0, 0}, []float64{1, -1, 1, 1}); err == nil {
		t.Error("negative variance accepted")
	}
	if s.Var.Value[1] != 0.25 {
		t.Fatal("a rejected SetStats changed the statistics")
	}
	x := tensor.New(b, c, h, w)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64() * 3)
	}
	y := s.Forward(x, true)
	ref := func(xv []float32) []float64 {
		out := make([]float64, len(xv))
		for i := range xv {
			ch := (i / (h * w)) % c
			if variance[ch] != 0 {
				out[i] = (float64(xv[i]) - mean[ch]) / math.Sqrt(variance[ch]+1e-5)
			}
		}
		return out
	}
	want := ref(x.Data)
	for i := range want {
		if math.Abs(float64(y.Data[i])-want[i]) > 1e-5*(1+math.Abs(want[i])) {
			t.Fatalf("y[%d] = %g, want %g", i, y.Data[i], want[i])
		}
	}
	r := tensor.New(b, c, h, w)
	for i := range r.Data {
		r.Data[i] = float32(rng.NormFloat64())
	}
	dx := s.Backward(r, &BackwardContext{NeedDX: true})
	for i := range x.Data {
		const eps = 1e-2
		xp := append([]float32(nil), x.Data...)
		xm := append([]float32(nil), x.Data...)
		xp[i] += eps
		xm[i] -= eps
		var lp, lm float64
		for j, v := range ref(xp) {
			lp += v * float64(r.Data[j])
		}
		for j, v := range ref(xm) {
			lm += v * float64(r.Data[j])
		}
		fd := (lp - lm) / (2 * eps)
		if math.Abs(float64(dx.Data[i])-fd) > 1e-3*(1+math.Abs(fd)) {
			t.Fatalf("dx[%d] = %g, finite difference %g", i, dx.Data[i], fd)
		}
	}
	for _, p := range s.Params() {
		if !p.Frozen {
			t.Errorf("%s is trainable", p.Name)
		}
	}
}
