package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// im2colRef is the definition of Im2colStrided, one element at a time.
func im2colRef(dst []float32, ld int, x []float32, c, h, w, kh, kw, s, p int) {
	oh, ow := ConvOut(h, kh, s, p), ConvOut(w, kw, s, p)
	for ci := 0; ci < c; ci++ {
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				row := (ci*kh+ki)*kw + kj
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						iy, ix := oy*s+ki-p, ox*s+kj-p
						var v float32
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							v = x[(ci*h+iy)*w+ix]
						}
						dst[row*ld+oy*ow+ox] = v
					}
				}
			}
		}
	}
}

// col2imRef is the definition of Col2imStrided (accumulating into dx).
func col2imRef(dx, col []float32, ld int, c, h, w, kh, kw, s, p int) {
	oh, ow := ConvOut(h, kh, s, p), ConvOut(w, kw, s, p)
	for ci := 0; ci < c; ci++ {
		for ki := 0; ki < kh; ki++ {
			for kj := 0; kj < kw; kj++ {
				row := (ci*kh+ki)*kw + kj
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						iy, ix := oy*s+ki-p, ox*s+kj-p
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							dx[(ci*h+iy)*w+ix] += col[row*ld+oy*ow+ox]
						}
					}
				}
			}
		}
	}
}

type convGeom struct{ c, h, w, kh, kw, s, p int }

// convGeoms covers the specialised paths (k3 s1 p1, k3 s2 p1, k1 s2, k7 s2
// p3, k8 s2 p3) and the general one, with odd sizes, padding ≥ kernel,
// kernels wider than the padded image on one axis and 1-pixel images.
func convGeoms() []convGeom {
	return []convGeom{
		{1, 5, 5, 3, 3, 1, 1}, {2, 7, 6, 3, 3, 2, 1}, {3, 9, 9, 7, 7, 2, 3},
		{2, 4, 5, 1, 1, 1, 0}, {1, 6, 6, 4, 4, 2, 0}, {2, 5, 5, 8, 8, 2, 3},
		{3, 1, 1, 3, 3, 1, 1}, {2, 2, 2, 3, 3, 1, 1}, {2, 1, 7, 3, 3, 1, 1},
		{2, 3, 3, 3, 3, 2, 1}, {2, 8, 8, 3, 3, 2, 1}, {1, 4, 4, 3, 3, 1, 2},
		{2, 6, 5, 1, 1, 2, 0}, {2, 7, 7, 1, 1, 2, 0}, {1, 5, 4, 2, 3, 1, 0},
		{1, 9, 11, 3, 2, 3, 1}, {1, 6, 6, 5, 5, 1, 4}, {2, 17, 19, 3, 3, 1, 1},
		{2, 34, 33, 3, 3, 1, 1}, {2, 33, 34, 3, 3, 2, 1}, {1, 28, 28, 8, 8, 2, 3},
		{1, 23, 23, 7, 7, 2, 3}, {1, 5, 5, 3, 3, 3, 1}, {1, 3, 3, 3, 3, 1, 0},
		{1, 4, 4, 1, 1, 1, 1}, {1, 6, 6, 3, 3, 2, 2},
	}
}

func TestIm2colStridedMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, g := range convGeoms() {
		for _, extra := range []int{0, 3} {
			t.Run(fmt.Sprintf("%+v/ld+%d", g, extra), func(t *testing.T) {
				oh, ow := ConvOut(g.h, g.kh, g.s, g.p), ConvOut(g.w, g.kw, g.s, g.p)
				rows, ld := g.c*g.kh*g.kw, oh*ow+extra
				x := randSlice(r, g.c*g.h*g.w)
				x0 := append([]float32(nil), x...)
				// dst starts as garbage: every entry of the patch matrix must be written.
				got := randSlice(r, (rows-1)*ld+oh*ow)
				want := append([]float32(nil), got...)
				Im2colStrided(got, ld, x, g.c, g.h, g.w, g.kh, g.kw, g.s, g.p)
				im2colRef(want, ld, x, g.c, g.h, g.w, g.kh, g.kw, g.s, g.p)
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("dst[%d] (row %d, col %d) = %g, want %g", i, i/ld, i%ld, got[i], want[i])
					}
				}
				for i := range x {
					if x[i] != x0[i] {
						t.Fatalf("x[%d] modified", i)
					}
				}
			})
		}
	}
}

func TestCol2imStridedMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, g := range convGeoms() {
		for _, extra := range []int{0, 3} {
			t.Run(fmt.Sprintf("%+v/ld+%d", g, extra), func(t *testing.T) {
				oh, ow := ConvOut(g.h, g.kh, g.s, g.p), ConvOut(g.w, g.kw, g.s, g.p)
				rows, ld := g.c*g.kh*g.kw, oh*ow+extra
				col := randSlice(r, (rows-1)*ld+oh*ow)
				col0 := append([]float32(nil), col...)
				dx0 := randSlice(r, g.c*g.h*g.w) // accumulated into
				got := append([]float32(nil), dx0...)
				want := append([]float32(nil), dx0...)
				Col2imStrided(got, col, ld, g.c, g.h, g.w, g.kh, g.kw, g.s, g.p)
				col2imRef(want, col, ld, g.c, g.h, g.w, g.kh, g.kw, g.s, g.p)
				for i := range got {
					if d := got[i] - want[i]; d > 1e-5 || d < -1e-5 {
						t.Fatalf("dx[%d] = %g, want %g", i, got[i], want[i])
					}
				}
				// Col2imStridedTo overwrites: same as accumulating into zeros.
				set := randSlice(r, len(dx0))
				zero := make([]float32, len(dx0))
				Col2imStridedTo(set, col, ld, g.c, g.h, g.w, g.kh, g.kw, g.s, g.p)
				col2imRef(zero, col, ld, g.c, g.h, g.w, g.kh, g.kw, g.s, g.p)
				for i := range set {
					if d := set[i] - zero[i]; d > 1e-5 || d < -1e-5 {
						t.Fatalf("Col2imStridedTo: dx[%d] = %g, want %g", i, set[i], zero[i])
					}
				}
				for i := range col {
					if col[i] != col0[i] {
						t.Fatalf("col[%d] modified", i)
					}
				}
			})
		}
	}
}

func TestIm2colStridedPanicsOnShortBuffers(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"im2col short dst", func() { Im2colStrided(make([]float32, 8), 9, make([]float32, 9), 1, 3, 3, 3, 3, 1, 1) }},
		{"im2col small ld", func() { Im2colStrided(make([]float32, 81), 8, make([]float32, 9), 1, 3, 3, 3, 3, 1, 1) }},
		{"im2col short x", func() { Im2colStrided(make([]float32, 81), 9, make([]float32, 8), 1, 3, 3, 3, 3, 1, 1) }},
		{"col2im short col", func() { Col2imStrided(make([]float32, 9), make([]float32, 80), 9, 1, 3, 3, 3, 3, 1, 1) }},
		{"col2imTo short dx", func() { Col2imStridedTo(make([]float32, 8), make([]float32, 81), 9, 1, 3, 3, 3, 3, 1, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if _, ok := recover().(*ShapeError); !ok {
					t.Fatal("no *ShapeError panic")
				}
			}()
			tc.f()
		})
	}
}

// benchGeoms are the unfoldings of ResNet-18 (CIFAR stem at 32×32, ImageNet
// stem at 224×224) and of cnn-mnist.
var benchGeoms = []struct {
	name string
	g    convGeom
}{
	{"c64-32x32-k3s1", convGeom{64, 32, 32, 3, 3, 1, 1}},
	{"c64-32x32-k3s2", convGeom{64, 32, 32, 3, 3, 2, 1}},
	{"c64-32x32-k1s2", convGeom{64, 32, 32, 1, 1, 2, 0}},
	{"c128-16x16-k3s1", convGeom{128, 16, 16, 3, 3, 1, 1}},
	{"c256-8x8-k3s1", convGeom{256, 8, 8, 3, 3, 1, 1}},
	{"c512-4x4-k3s1", convGeom{512, 4, 4, 3, 3, 1, 1}},
	{"c64-56x56-k3s1", convGeom{64, 56, 56, 3, 3, 1, 1}},
	{"c3-224x224-k7s2", convGeom{3, 224, 224, 7, 7, 2, 3}},
	{"c1-28x28-k8s2", convGeom{1, 28, 28, 8, 8, 2, 3}},
}

// BenchmarkIm2col reports the bandwidth of the patch matrix written (GB/s)
// for one example, as Conv2d calls it (ld = oh·ow).
func BenchmarkIm2col(b *testing.B) {
	for _, bg := range benchGeoms {
		g := bg.g
		b.Run(bg.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			oh, ow := ConvOut(g.h, g.kh, g.s, g.p), ConvOut(g.w, g.kw, g.s, g.p)
			x := randSlice(r, g.c*g.h*g.w)
			dst := make([]float32, g.c*g.kh*g.kw*oh*ow)
			b.SetBytes(int64(4 * len(dst)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				Im2colStrided(dst, oh*ow, x, g.c, g.h, g.w, g.kh, g.kw, g.s, g.p)
			}
		})
	}
}

// BenchmarkCol2im reports the bandwidth of the patch matrix read (GB/s),
// overwriting dx (Col2imStridedTo, what Conv2d needs).
func BenchmarkCol2im(b *testing.B) {
	for _, bg := range benchGeoms {
		g := bg.g
		b.Run(bg.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			oh, ow := ConvOut(g.h, g.kh, g.s, g.p), ConvOut(g.w, g.kw, g.s, g.p)
			col := randSlice(r, g.c*g.kh*g.kw*oh*ow)
			dx := make([]float32, g.c*g.h*g.w)
			b.SetBytes(int64(4 * len(col)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				Col2imStridedTo(dx, col, oh*ow, g.c, g.h, g.w, g.kh, g.kw, g.s, g.p)
			}
		})
	}
}
