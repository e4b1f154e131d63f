package tensor

import (
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// naiveConv computes the forward, backward-data and backward-weights
// results of a convolution by the definition, in float64.
func naiveConv(s ConvShape, x, w, dy []float32) (y, dx, dw []float64) {
	oh, ow := s.Out()
	y = make([]float64, s.N*s.Cout*oh*ow)
	dx = make([]float64, len(x))
	dw = make([]float64, len(w))
	for n := 0; n < s.N; n++ {
		for o := 0; o < s.Cout; o++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					yi := ((n*s.Cout+o)*oh+i)*ow + j
					for c := 0; c < s.Cin; c++ {
						for ky := 0; ky < s.K; ky++ {
							for kx := 0; kx < s.K; kx++ {
								iy, ix := i*s.Stride-s.Pad+ky, j*s.Stride-s.Pad+kx
								if iy < 0 || iy >= s.H || ix < 0 || ix >= s.W {
									continue
								}
								xi := ((n*s.Cin+c)*s.H+iy)*s.W + ix
								wi := ((o*s.Cin+c)*s.K+ky)*s.K + kx
								y[yi] += float64(x[xi]) * float64(w[wi])
								dx[xi] += float64(dy[yi]) * float64(w[wi])
								dw[wi] += float64(dy[yi]) * float64(x[xi])
							}
						}
					}
				}
			}
		}
	}
	return y, dx, dw
}

// maxRelErr returns max_i |got_i − want_i| / (max_i |want_i| + tiny).
func maxRelErr(got []float32, want []float64) float64 {
	var e, m float64
	for i, v := range want {
		e = max(e, math.Abs(float64(got[i])-v))
		m = max(m, math.Abs(v))
	}
	return e / (m + 1e-30)
}

var convShapes = []ConvShape{
	{N: 1, Cin: 3, H: 17, W: 13, Cout: 8, K: 3, Stride: 1, Pad: 1},
	{N: 2, Cin: 16, H: 8, W: 8, Cout: 32, K: 3, Stride: 2, Pad: 1},
	{N: 3, Cin: 1, H: 28, W: 28, Cout: 16, K: 8, Stride: 2, Pad: 3},
	{N: 2, Cin: 32, H: 9, W: 9, Cout: 16, K: 1, Stride: 1, Pad: 0},
	{N: 4, Cin: 24, H: 10, W: 6, Cout: 40, K: 1, Stride: 2, Pad: 0},
	{N: 1, Cin: 3, H: 30, W: 30, Cout: 64, K: 7, Stride: 2, Pad: 3},
	{N: 5, Cin: 64, H: 4, W: 4, Cout: 64, K: 3, Stride: 1, Pad: 1},
	{N: 2, Cin: 5, H: 6, W: 7, Cout: 3, K: 2, Stride: 1, Pad: 0},
}

// TestConvPlanMatchesDefinition checks the compiled-in kernels (when there
// are any) against the definition of the three convolution products.
func TestConvPlanMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range convShapes {
		p, err := NewConvPlan(s)
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		if p == nil {
			t.Skipf("no convolution kernels (%s)", ConvKernels)
		}
		oh, ow := s.Out()
		x := randSlice(r, s.N*s.Cin*s.H*s.W)
		w := randSlice(r, s.Cout*s.Cin*s.K*s.K)
		dy := randSlice(r, s.N*s.Cout*oh*ow)
		wy, wdx, wdw := naiveConv(s, x, w, dy)
		var cw ConvWeights
		cw.Set(w)
		y := make([]float32, len(wy))
		dx := make([]float32, len(x))
		dw := make([]float32, len(w))
		for i := range y {
			y[i] = float32(math.NaN()) // overwritten, never read
		}
		p.Forward(y, x, &cw)
		p.BackwardData(dx, dy, &cw)
		p.BackwardWeights(dw, x, dy)
		const tol = 1e-5
		for _, c := range []struct {
			name string
			got  []float32
			want []float64
		}{{"forward", y, wy}, {"backward-data", dx, wdx}, {"backward-weights", dw, wdw}} {
			if e := maxRelErr(c.got, c.want); !(e < tol) {
				t.Errorf("%+v %s (%s): relative error %.3g, want < %g", s, c.name, p.Impl(), e, tol)
			}
		}
		// New weights reach the prepared copies.
		w2 := randSlice(r, len(w))
		cw.Set(w2)
		wy2, wdx2, _ := naiveConv(s, x, w2, dy)
		p.Forward(y, x, &cw)
		p.BackwardData(dx, dy, &cw)
		if e := maxRelErr(y, wy2); !(e < tol) {
			t.Errorf("%+v forward after Set: relative error %.3g", s, e)
		}
		if e := maxRelErr(dx, wdx2); !(e < tol) {
			t.Errorf("%+v backward-data after Set: relative error %.3g", s, e)
		}
	}
}

// TestConvPlanConcurrent runs one plan from several goroutines at once: each
// result is bit-identical to the serial one.
func TestConvPlanConcurrent(t *testing.T) {
	s := ConvShape{N: 2, Cin: 32, H: 12, W: 12, Cout: 48, K: 3, Stride: 1, Pad: 1}
	p, err := NewConvPlan(s)
	if err != nil {
		t.Fatal(err)
	}
	if p == nil {
		t.Skipf("no convolution kernels (%s)", ConvKernels)
	}
	r := rand.New(rand.NewPCG(3, 4))
	oh, ow := s.Out()
	const jobs = 8
	xs, dys := make([][]float32, jobs), make([][]float32, jobs)
	for j := range jobs {
		xs[j] = randSlice(r, s.N*s.Cin*s.H*s.W)
		dys[j] = randSlice(r, s.N*s.Cout*oh*ow)
	}
	var cw ConvWeights
	cw.Set(randSlice(r, s.Cout*s.Cin*s.K*s.K))
	run := func(j int) (y, dx, dw []float32) {
		y = make([]float32, len(dys[j]))
		dx = make([]float32, len(xs[j]))
		dw = make([]float32, s.Cout*s.Cin*s.K*s.K)
		p.Forward(y, xs[j], &cw)
		p.BackwardData(dx, dys[j], &cw)
		p.BackwardWeights(dw, xs[j], dys[j])
		return
	}
	type res struct{ y, dx, dw []float32 }
	serial := make([]res, jobs)
	for j := range jobs {
		serial[j].y, serial[j].dx, serial[j].dw = run(j)
	}
	par := make([]res, jobs)
	var wg sync.WaitGroup
	for j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			par[j].y, par[j].dx, par[j].dw = run(j)
		}()
	}
	wg.Wait()
	for j := range jobs {
		for _, c := range [][2][]float32{{serial[j].y, par[j].y}, {serial[j].dx, par[j].dx}, {serial[j].dw, par[j].dw}} {
			for i := range c[0] {
				if math.Float32bits(c[0][i]) != math.Float32bits(c[1][i]) {
					t.Fatalf("job %d: concurrent result differs from serial at %d: %v vs %v", j, i, c[1][i], c[0][i])
				}
			}
		}
	}
}

func TestConvPlanOff(t *testing.T) {
	was := UseConvKernels(false)
	defer UseConvKernels(was)
	p, err := NewConvPlan(convShapes[0])
	if p != nil || err != nil {
		t.Fatalf("with kernels off: plan %v, error %v; want nil, nil", p, err)
	}
}

// TestConvPlanSharedWeightsAndChannelBlocks: two plans (N = 3 and N = 1)
// share one ConvWeights across two Sets, used in either order; and a plan of
// output channels [16, 40) of 56 (CoutTotal) writes and reads only its
// channels, against the definition.
func TestConvPlanSharedWeightsAndChannelBlocks(t *testing.T) {
	full := ConvShape{N: 3, Cin: 16, H: 7, W: 9, Cout: 56, K: 3, Stride: 1, Pad: 1}
	p3, err := NewConvPlan(full)
	if err != nil {
		t.Fatal(err)
	}
	if p3 == nil {
		t.Skipf("no convolution kernels (%s)", ConvKernels)
	}
	one := full
	one.N = 1
	p1, err := NewConvPlan(one)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	oh, ow := full.Out()
	tt := oh * ow
	x := randSlice(r, full.N*full.Cin*full.H*full.W)
	dy := randSlice(r, full.N*full.Cout*tt)
	var cw ConvWeights
	for round, order := range [][2]*ConvPlan{{p3, p1}, {p1, p3}} {
		w := randSlice(r, full.Cout*full.Cin*full.K*full.K)
		cw.Set(w)
		wy, wdx, wdw := naiveConv(full, x, w, dy)
		for _, p := range order {
			n := p.Shape().N
			y := make([]float32, n*full.Cout*tt)
			dx := make([]float32, n*full.Cin*full.H*full.W)
			p.Forward(y, x[:len(dx)], &cw)
			p.BackwardData(dx, dy[:len(y)], &cw)
			if e := maxRelErr(y, wy[:len(y)]); !(e < 1e-5) {
				t.Errorf("round %d, N=%d forward: relative error %.3g", round, n, e)
			}
			if e := maxRelErr(dx, wdx[:len(dx)]); !(e < 1e-5) {
				t.Errorf("round %d, N=%d backward-data: relative error %.3g", round, n, e)
			}
		}
		// Output channels [16, 40) of 56, viewed in place.
		blk := full
		blk.Cout, blk.CoutTotal = 24, 56
		pb, err := NewConvPlan(blk)
		if err != nil {
			t.Fatal(err)
		}
		d := full.Cin * full.K * full.K
		dw := make([]float32, 24*d)
		pb.BackwardWeights(dw, x, dy[16*tt:])
		if e := maxRelErr(dw, wdw[16*d:40*d]); !(e < 1e-5) {
			t.Errorf("round %d, channel block backward-weights: relative error %.3g", round, e)
		}
		y := make([]float32, len(dy))
		for i := range y {
			y[i] = -7
		}
		var cb ConvWeights
		cb.Set(w[16*d : 40*d])
		pb.Forward(y[16*tt:], x, &cb)
		for n := 0; n < full.N; n++ {
			for o := 0; o < full.Cout; o++ {
				for q := 0; q < tt; q++ {
					i := (n*full.Cout+o)*tt + q
					if o < 16 || o >= 40 {
						if y[i] != -7 {
							t.Fatalf("channel block forward wrote channel %d of example %d", o, n)
						}
					} else if math.Abs(float64(y[i])-wy[i]) > 1e-4*(1+math.Abs(wy[i])) {
						t.Fatalf("channel block forward: y[%d,%d,%d] = %v, want %v", n, o, q, y[i], wy[i])
					}
				}
			}
		}
	}
}

func TestAcquireWorkspaceEmpty(t *testing.T) {
	for range 3 {
		b := acquireWorkspace(0)
		if len(b) < 1 {
			t.Fatalf("acquireWorkspace(0) has %d bytes, want ≥ 1 (its first byte is passed to C)", len(b))
		}
		releaseWorkspace(b)
	}
}

// winogradShapes are shapes whose plans compute some products by Winograd
// (WinogradOps), with the products expected.
var winogradShapes = []struct {
	s    ConvShape
	want WinogradOps
}{
	{ConvShape{N: 1, Cin: 32, H: 28, W: 28, Cout: 32, K: 3, Stride: 1, Pad: 1, Winograd: WinogradAll}, WinogradAll},
	{ConvShape{N: 2, Cin: 16, H: 22, W: 19, Cout: 48, K: 3, Stride: 1, Pad: 1, Winograd: WinogradAll}, WinogradAll},
	// Forward left out by the caller (as under weight standardisation).
	{ConvShape{N: 1, Cin: 32, H: 28, W: 28, Cout: 32, K: 3, Stride: 1, Pad: 1, Winograd: WinogradBackwardData | WinogradBackwardWeights}, WinogradBackwardData | WinogradBackwardWeights},
	// Too few positions for forward and backward-data: weights only.
	{ConvShape{N: 2, Cin: 64, H: 10, W: 10, Cout: 64, K: 3, Stride: 1, Pad: 1, Winograd: WinogradAll}, WinogradBackwardWeights},
	// A block of 32 of 80 output channels.
	{ConvShape{N: 2, Cin: 16, H: 20, W: 20, Cout: 32, CoutTotal: 80, K: 3, Stride: 1, Pad: 1, Winograd: WinogradAll}, WinogradAll},
	// Not 3×3 stride 1, or channels not a multiple of 16: direct.
	{ConvShape{N: 2, Cin: 32, H: 28, W: 28, Cout: 32, K: 3, Stride: 2, Pad: 1, Winograd: WinogradAll}, 0},
	{ConvShape{N: 2, Cin: 24, H: 28, W: 28, Cout: 32, K: 3, Stride: 1, Pad: 1, Winograd: WinogradAll}, 0},
}

// TestConvPlanWinograd checks the products computed by Winograd against the
// definition, and that they are the ones WinogradOps names (on a CPU with
// AVX-512, where oneDNN has the kernels).
func TestConvPlanWinograd(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	// The shape rule, on every build (with or without kernels).
	for _, tc := range winogradShapes {
		if got := tc.s.WinogradOps(); got != tc.want {
			t.Errorf("%+v: WinogradOps %03b, want %03b", tc.s, got, tc.want)
		}
	}
	// Whether oneDNN has Winograd kernels on this CPU (it needs avx512_core
	// and honours ONEDNN_MAX_CPU_ISA): some product of some case runs one.
	// Then every product the rule allows must run one.
	haveWino := false
	for _, tc := range winogradShapes {
		if p, err := NewConvPlan(tc.s); err == nil && p != nil && strings.Contains(p.Impl(), "wino") {
			haveWino = true
		}
	}
	for _, tc := range winogradShapes {
		s := tc.s
		p, err := NewConvPlan(s)
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		if p == nil {
			t.Skipf("no convolution kernels (%s)", ConvKernels)
		}
		impls := strings.Split(p.Impl(), " / ")
		for op, bit := range []WinogradOps{WinogradForward, WinogradBackwardData, WinogradBackwardWeights} {
			wino := strings.Contains(impls[op], "wino")
			if wino && tc.want&bit == 0 || !wino && tc.want&bit != 0 && haveWino {
				t.Errorf("%+v: product %d runs %q, Winograd wanted: %v", s, op, impls[op], tc.want&bit != 0)
			}
		}
		oh, ow := s.Out()
		ct := s.coutTotal()
		x := randSlice(r, s.N*s.Cin*s.H*s.W)
		w := randSlice(r, s.Cout*s.Cin*s.K*s.K)
		dyFull := randSlice(r, s.N*ct*oh*ow)
		// The definition on the plan's block of channels.
		dense := s
		dense.CoutTotal = 0
		dy := make([]float32, s.N*s.Cout*oh*ow)
		for n := 0; n < s.N; n++ {
			copy(dy[n*s.Cout*oh*ow:(n+1)*s.Cout*oh*ow], dyFull[n*ct*oh*ow:])
		}
		wy, wdx, wdw := naiveConv(dense, x, w, dy)
		var cw ConvWeights
		cw.Set(w)
		yFull := make([]float32, s.N*ct*oh*ow)
		dx := make([]float32, len(x))
		dw := make([]float32, len(w))
		p.Forward(yFull, x, &cw)
		p.BackwardData(dx, dyFull, &cw)
		p.BackwardWeights(dw, x, dyFull)
		y := make([]float32, len(wy))
		for n := 0; n < s.N; n++ {
			copy(y[n*s.Cout*oh*ow:(n+1)*s.Cout*oh*ow], yFull[n*ct*oh*ow:])
		}
		for _, c := range []struct {
			name string
			got  []float32
			want []float64
		}{{"forward", y, wy}, {"backward-data", dx, wdx}, {"backward-weights", dw, wdw}} {
			// The same tolerance as the direct kernels' (their error is
			// ~3e-7 here, Winograd's ~1e-6).
			if e := maxRelErr(c.got, c.want); !(e < 1e-5) {
				t.Errorf("%+v %s (%s): relative error %.3g, want < 1e-5", s, c.name, p.Impl(), e)
			}
		}
		// New weights reach the Winograd products too.
		w2 := randSlice(r, len(w))
		cw.Set(w2)
		wy2, wdx2, _ := naiveConv(dense, x, w2, dy)
		p.Forward(yFull, x, &cw)
		p.BackwardData(dx, dyFull, &cw)
		for n := 0; n < s.N; n++ {
			copy(y[n*s.Cout*oh*ow:(n+1)*s.Cout*oh*ow], yFull[n*ct*oh*ow:])
		}
		if e := maxRelErr(y, wy2); !(e < 1e-5) {
			t.Errorf("%+v forward after Set: relative error %.3g", s, e)
		}
		if e := maxRelErr(dx, wdx2); !(e < 1e-5) {
			t.Errorf("%+v backward-data after Set: relative error %.3g", s, e)
		}
	}
}
