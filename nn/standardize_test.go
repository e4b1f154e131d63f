package nn

import "testing"

// statsStandardize returns a 4-channel Standardize with one zero-variance
// channel and one small variance: the layer case of
// TestLayerForwardAndGradients, which checks its forward pass against the
// float64 reference (refForward) and dx against finite differences.
func statsStandardize(name string) *Standardize {
	s := NewStandardize(name, 4)
	if err := s.SetStats([]float64{0.5, -1, 2, 0}, []float64{4, 0.25, 0, 1e-3}); err != nil {
		panic(err)
	}
	return s
}

// TestStandardizeStats: invalid statistics are rejected without changing
// the layer, and μ and v are never trained.
func TestStandardizeStats(t *testing.T) {
	s := statsStandardize("sn")
	if err := s.SetStats([]float64{0, 0, 0, 0}, []float64{1, -1, 1, 1}); err == nil {
		t.Error("negative variance accepted")
	}
	if s.Var.Value[1] != 0.25 {
		t.Fatal("a rejected SetStats changed the statistics")
	}
	for _, p := range s.Params() {
		if !p.Frozen {
			t.Errorf("%s is trainable", p.Name)
		}
	}
}
