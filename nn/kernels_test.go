package nn

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"dptrain/tensor"
)

// gnReference is GroupNorm forward and backward in float64, straight from
// the definitions: y = γ·x̂ + β, x̂ = (x−μ)/√(σ²+ε);
// dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))/√(σ²+ε), dx̂ = γ·dy;
// ∇γ = Σ dy·x̂, ∇β = Σ dy (summed over the batch); mag holds per channel
// Σ|dy|·(1+|x̂|), the scale of the rounding errors of both sums.
func gnReference(x, dy []float32, b, c, hw, groups int, gamma, beta []float32, eps float64) (y, dx, dg, db, mag []float64) {
	y, dx = make([]float64, len(x)), make([]float64, len(x))
	dg, db, mag = make([]float64, c), make([]float64, c), make([]float64, c)
	cg := c / groups
	n := cg * hw
	for i := 0; i < b; i++ {
		for gr := 0; gr < groups; gr++ {
			off := (i*c + gr*cg) * hw
			var mu, v float64
			for j := 0; j < n; j++ {
				mu += float64(x[off+j])
			}
			mu /= float64(n)
			for j := 0; j < n; j++ {
				d := float64(x[off+j]) - mu
				v += d * d
			}
			v /= float64(n)
			rs := 1 / math.Sqrt(v+eps)
			xh := make([]float64, n)
			var m1, m2 float64
			for j := 0; j < n; j++ {
				ch := gr*cg + j/hw
				xh[j] = (float64(x[off+j]) - mu) * rs
				y[off+j] = float64(gamma[ch])*xh[j] + float64(beta[ch])
				d := float64(gamma[ch]) * float64(dy[off+j])
				m1 += d
				m2 += d * xh[j]
				dg[ch] += float64(dy[off+j]) * xh[j]
				db[ch] += float64(dy[off+j])
				mag[ch] += math.Abs(float64(dy[off+j])) * (1 + math.Abs(xh[j]))
			}
			m1 /= float64(n)
			m2 /= float64(n)
			for j := 0; j < n; j++ {
				ch := gr*cg + j/hw
				dx[off+j] = (float64(gamma[ch])*float64(dy[off+j]) - m1 - xh[j]*m2) * rs
			}
		}
	}
	return y, dx, dg, db, mag
}

// TestGroupNormMatchesFloat64Reference checks GroupNorm at sizes where its
// blocked float32 sums span several blocks, with inputs whose mean is far
// from 0 relative to their spread (where one-pass variances fail).
func TestGroupNormMatchesFloat64Reference(t *testing.T) {
	for _, tc := range []struct {
		name               string
		b, c, h, w, groups int
		offset, spread     float64
	}{
		{"centred", 2, 8, 20, 20, 4, 0, 1},
		{"offset-100", 2, 8, 20, 20, 2, 100, 1},
		{"offset-small-spread", 3, 6, 9, 7, 3, 5, 0.01},
		{"one-group", 2, 4, 17, 17, 1, -3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(21, 22))
			g := randGN("g", tc.groups, tc.c, r)
			hw := tc.h * tc.w
			x := tensor.New(tc.b, tc.c, tc.h, tc.w)
			dy := tensor.New(tc.b, tc.c, tc.h, tc.w)
			for i := range x.Data {
				x.Data[i] = float32(tc.offset + tc.spread*r.NormFloat64())
				dy.Data[i] = float32(r.NormFloat64())
			}
			x0, dy0 := append([]float32(nil), x.Data...), append([]float32(nil), dy.Data...)
			wy, wdx, wdg, wdb, mag := gnReference(x.Data, dy.Data, tc.b, tc.c, hw, tc.groups, g.Gamma.Value, g.Beta.Value, float64(g.Eps))
			y := g.Forward(x, true)
			dx := g.Backward(dy, &BackwardContext{NeedDX: true})
			for i := range x.Data {
				if x.Data[i] != x0[i] || dy.Data[i] != dy0[i] {
					t.Fatalf("input modified at %d", i)
				}
			}
			// A few float32 ulps, also when the mean is large against the
			// spread (μ is not rounded to float32 before use).
			for i, v := range y.Data {
				if math.Abs(float64(v)-wy[i]) > 5e-7*(1+math.Abs(wy[i])) {
					t.Fatalf("y[%d] = %g, want %g", i, v, wy[i])
				}
			}
			scale := 0.0
			for _, v := range wdx {
				scale = max(scale, math.Abs(v))
			}
			for i, v := range dx.Data {
				if math.Abs(float64(v)-wdx[i]) > 1e-6*scale {
					t.Fatalf("dx[%d] = %g, want %g (max |dx| %g)", i, v, wdx[i], scale)
				}
			}
			for ch := 0; ch < tc.c; ch++ {
				if math.Abs(float64(g.Gamma.Grad[ch])-wdg[ch]) > 1e-6*mag[ch] ||
					math.Abs(float64(g.Beta.Grad[ch])-wdb[ch]) > 1e-6*mag[ch] {
					t.Fatalf("channel %d: ∇γ = %g, ∇β = %g, want %g, %g", ch, g.Gamma.Grad[ch], g.Beta.Grad[ch], wdg[ch], wdb[ch])
				}
			}
		})
	}
}

// TestKernelLayersAllocateNoTensorsWhenWarm: after a first step, forward and
// backward reuse their buffers (the goroutines of par.For cost a
// few hundred bytes; one activation here is 256 KiB).
func TestKernelLayersAllocateNoTensorsWhenWarm(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	shape := []int{16, 16, 16, 16}
	x, dy := tensor.New(shape...), tensor.New(shape...)
	for i := range x.Data {
		x.Data[i], dy.Data[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
	}
	for _, tc := range []struct {
		name string
		l    Layer
	}{
		{"groupnorm", randGN("g", 4, 16, r)},
		{"relu", &ReLU{}},
		{"tanh", &Tanh{}},
		{"residual", &Residual{PostReLU: true, Main: []Layer{&ReLU{}}}},
		{"residual-projection", &Residual{PostReLU: true, Main: []Layer{randGN("a", 4, 16, r), &ReLU{}}, Shortcut: []Layer{randGN("b", 2, 16, r)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step := func() {
				tc.l.Forward(x, true)
				tc.l.Backward(dy, &BackwardContext{NeedDX: true})
			}
			step()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			for i := 0; i < 3; i++ {
				step()
			}
			runtime.ReadMemStats(&m1)
			if got := m1.TotalAlloc - m0.TotalAlloc; got > 32<<10 {
				t.Fatalf("3 warm steps allocated %d bytes", got)
			}
		})
	}
}
