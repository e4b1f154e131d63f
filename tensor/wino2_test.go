package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// wgradRef is the weight gradient of a 3×3 stride-1 convolution with one
// pixel of padding by its definition, in float64, and the magnitude sum
// Σ|dy|·|x| of each entry (plain OIHW).
func wgradRef(x, dy []float32, n, cin, h, w, cout int) (g, mag []float64) {
	g, mag = make([]float64, cout*cin*9), make([]float64, cout*cin*9)
	for m := 0; m < n; m++ {
		for o := 0; o < cout; o++ {
			for i := 0; i < cin; i++ {
				for kh := 0; kh < 3; kh++ {
					for kw := 0; kw < 3; kw++ {
						var s, a float64
						for y := 0; y < h; y++ {
							for z := 0; z < w; z++ {
								iy, iz := y+kh-1, z+kw-1
								if iy < 0 || iy >= h || iz < 0 || iz >= w {
									continue
								}
								p := float64(dy[((m*cout+o)*h+y)*w+z]) * float64(x[((m*cin+i)*h+iy)*w+iz])
								s += p
								a += math.Abs(p)
							}
						}
						e := (o*cin+i)*9 + kh*3 + kw
						g[e] += s
						mag[e] += a
					}
				}
			}
		}
	}
	return g, mag
}

func TestWinogradWeightGradMatchesDefinition(t *testing.T) {
	if NewWinogradWeightGrad(ConvShape{N: 1, Cin: 16, H: 4, W: 4, Cout: 16, K: 3, Stride: 1, Pad: 1}) == nil {
		t.Skip("no AVX-512 C kernel in this build or on this CPU")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, s := range []ConvShape{
		{N: 1, Cin: 16, H: 4, W: 4, Cout: 16},
		{N: 1, Cin: 16, H: 5, W: 3, Cout: 32},  // odd sizes: partial tiles
		{N: 2, Cin: 32, H: 7, W: 8, Cout: 48},  // two images summed; 8 rows per tile
		{N: 1, Cin: 48, H: 1, W: 1, Cout: 16},  // one pixel
		{N: 2, Cin: 32, H: 3, W: 21, Cout: 16}, // a 16-column block and five columns after it
		{N: 1, Cin: 64, H: 9, W: 6, Cout: 32},
		{N: 3, Cin: 128, H: 4, W: 5, Cout: 16},
		{N: 1, Cin: 32, H: 32, W: 32, Cout: 32}, // cnn-cifar's 32² layer
		{N: 1, Cin: 128, H: 16, W: 16, Cout: 128},
	} {
		s.K, s.Stride, s.Pad = 3, 1, 1
		t.Run(fmt.Sprintf("N%d-%dx%dx%d-to%d", s.N, s.Cin, s.H, s.W, s.Cout), func(t *testing.T) {
			k := NewWinogradWeightGrad(s)
			x := randSlice(r, s.N*s.Cin*s.H*s.W)
			dy := randSlice(r, s.N*s.Cout*s.H*s.W)
			x[0], dy[len(dy)-1] = 0, 0 // exact zeros pass through the transforms
			x0, dy0 := slices.Clone(x), slices.Clone(dy)
			l := k.Layout()
			if l.Rows != s.Cout || l.Block != 1 || l.Chunk != 9*s.Cin || l.Len != s.Cout*9*s.Cin {
				t.Fatalf("layout %+v", l)
			}
			own := make([]float32, l.Len)
			for i := range own {
				own[i] = float32(math.NaN()) // every entry must be written
			}
			k.BackwardWeightsBlocked(own, x, dy)
			if !slices.Equal(x, x0) || !slices.Equal(dy, dy0) {
				t.Fatal("inputs modified")
			}
			got := make([]float32, l.Len)
			k.UnblockWeightGrad(got, own)
			want, mag := wgradRef(x, dy, s.N, s.Cin, s.H, s.W, s.Cout)
			worst := 0.0
			for e := range want {
				d := math.Abs(float64(got[e]) - want[e])
				if !(d <= 1e-5*mag[e]+1e-30) {
					t.Fatalf("entry %d: got %g, want %g (magnitude %g)", e, got[e], want[e], mag[e])
				}
				if mag[e] > 0 {
					worst = max(worst, d/mag[e])
				}
			}
			t.Logf("worst error / magnitude sum: %.2e", worst)
			// Row o of the own layout holds row o's values: its sum of
			// squares is the plain row's (a permutation).
			back := make([]float32, l.Len)
			k.BlockWeightGrad(back, got)
			if !slices.Equal(back, own) {
				t.Fatal("BlockWeightGrad is not the inverse of UnblockWeightGrad")
			}
			d := 9 * s.Cin
			for o := 0; o < s.Cout; o++ {
				a, b := slices.Clone(own[o*d:(o+1)*d]), slices.Clone(got[o*d:(o+1)*d])
				slices.Sort(a)
				slices.Sort(b)
				if !slices.Equal(a, b) {
					t.Fatalf("row %d of the layout is not a permutation of plain row %d", o, o)
				}
			}
		})
	}
}

func TestWinogradWeightGradShapes(t *testing.T) {
	ok := ConvShape{N: 1, Cin: 16, H: 4, W: 4, Cout: 16, K: 3, Stride: 1, Pad: 1}
	if NewWinogradWeightGrad(ok) == nil {
		t.Skip("no AVX-512 C kernel in this build or on this CPU")
	}
	for _, bad := range []func(*ConvShape){
		func(s *ConvShape) { s.K = 1; s.Pad = 0 },
		func(s *ConvShape) { s.Stride = 2 },
		func(s *ConvShape) { s.Pad = 0 },
		func(s *ConvShape) { s.Cin = 24 },
		func(s *ConvShape) { s.Cout = 8 },
		func(s *ConvShape) { s.CoutTotal = 32 },
		func(s *ConvShape) { s.N = 0 },
	} {
		s := ok
		bad(&s)
		if NewWinogradWeightGrad(s) != nil {
			t.Errorf("%+v: want nil (not this kernel's shape)", s)
		}
	}
	k := NewWinogradWeightGrad(ok)
	defer func() {
		if _, isShape := recover().(*ShapeError); !isShape {
			t.Error("a short dw: want a *ShapeError panic")
		}
	}()
	k.BackwardWeightsBlocked(make([]float32, 10), make([]float32, 16*16), make([]float32, 16*16))
}
