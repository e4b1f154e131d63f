package nn

import (
	"math"
	"testing"

	"dptrain/tensor"
)

// TestMaxPoolWindowInPadding: outputs whose window lies in the padding only
// are −∞ and route no gradient (their index is −1), and the others pass
// dy to their input.
func TestMaxPoolWindowInPadding(t *testing.T) {
	x := tensor.New(1, 1, 2, 2)
	copy(x.Data, []float32{1, -2, 3, 0.5})
	p := NewMaxPool(1, 1, 1)
	y := p.Forward(x, true)
	if len(y.Data) != 16 {
		t.Fatalf("output %v, want 4×4", y.Shape)
	}
	for oy := 0; oy < 4; oy++ {
		for ox := 0; ox < 4; ox++ {
			want := float32(math.Inf(-1))
			if oy >= 1 && oy <= 2 && ox >= 1 && ox <= 2 {
				want = x.Data[(oy-1)*2+ox-1]
			}
			if got := y.Data[oy*4+ox]; got != want {
				t.Fatalf("y[%d,%d] = %v, want %v", oy, ox, got, want)
			}
		}
	}
	dy := tensor.New(1, 1, 4, 4)
	for i := range dy.Data {
		dy.Data[i] = float32(i + 1)
	}
	dx := p.Backward(dy, &BackwardContext{Mode: Accumulate, NeedDX: true})
	for i, want := range []float32{6, 7, 10, 11} {
		if dx.Data[i] != want {
			t.Fatalf("dx = %v, want [6 7 10 11]", dx.Data)
		}
	}
}
