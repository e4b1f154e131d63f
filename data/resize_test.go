package data

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
)

// refResize is a direct 2-D evaluation of the antialiased triangle filter
// over the region (x0,y0,rw,rh) (float64, no separability or reuse).
func refResize(src []uint8, sh, sw int, x0, y0, rw, rh float64, dh, dw int) []float64 {
	out := make([]float64, dh*dw)
	sx, sy := rw/float64(dw), rh/float64(dh)
	supx, supy := math.Max(sx, 1), math.Max(sy, 1)
	for oy := range dh {
		cy := y0 + (float64(oy)+0.5)*sy
		for ox := range dw {
			cx := x0 + (float64(ox)+0.5)*sx
			var num, den float64
			for i := range sh {
				wy := 1 - math.Abs(float64(i)+0.5-cy)/supy
				if wy <= 0 {
					continue
				}
				for j := range sw {
					wx := 1 - math.Abs(float64(j)+0.5-cx)/supx
					if wx <= 0 {
						continue
					}
					num += wy * wx * float64(src[i*sw+j])
					den += wy * wx
				}
			}
			out[oy*dw+ox] = num / den
		}
	}
	return out
}

func TestResampleAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	var rs resampler
	for _, tt := range []struct{ sh, sw, dh, dw int }{
		{8, 8, 4, 4}, {32, 24, 7, 11}, {5, 9, 13, 6}, {100, 3, 10, 3}, {6, 6, 6, 6}, {1, 1, 3, 2},
	} {
		src := make([]uint8, tt.sh*tt.sw)
		for i := range src {
			src[i] = uint8(r.Uint32())
		}
		for _, reg := range [][4]float64{{0, 0, float64(tt.sw), float64(tt.sh)}, {0.5, 0.25, float64(tt.sw) * 0.6, float64(tt.sh) * 0.7}} {
			ref := refResize(src, tt.sh, tt.sw, reg[0], reg[1], reg[2], reg[3], tt.dh, tt.dw)
			rs.region(src, 1, tt.sh, tt.sw, reg[0], reg[1], reg[2], reg[3], tt.dh, tt.dw, func(ch, y int, row []float32) {
				for x, v := range row {
					if d := math.Abs(float64(v) - ref[y*tt.dw+x]); d > 1e-3 {
						t.Fatalf("%v region %v: (%d,%d) got %v want %v", tt, reg, y, x, v, ref[y*tt.dw+x])
					}
				}
			})
		}
	}
}

func TestResizeSquareProperties(t *testing.T) {
	var rs resampler
	// Identity at the same size.
	_, src := testImage(6, 6, 1)
	dst := make([]uint8, len(src))
	rs.resizeSquare(src, 3, 6, 6, ResizeShorterCenter, 6, dst)
	if !bytes.Equal(src, dst) {
		t.Fatal("same-size resize changed pixels")
	}
	// Shorter side already at the size: the centre square, unchanged.
	_, wide := testImage(6, 10, 2)
	rs.resizeSquare(wide, 3, 6, 10, ResizeShorterCenter, 6, dst)
	for ch := range 3 {
		for y := range 6 {
			want := wide[(ch*6+y)*10+2 : (ch*6+y)*10+8]
			if got := dst[(ch*6+y)*6 : (ch*6+y+1)*6]; !bytes.Equal(got, want) {
				t.Fatalf("channel %d row %d: %v want %v", ch, y, got, want)
			}
		}
	}
	// Constants stay constant, whatever the mode and scale.
	flat := bytes.Repeat([]uint8{77}, 3*37*23)
	for _, mode := range []ResizeMode{ResizeShorterCenter, ResizeFit} {
		for _, size := range []int{1, 5, 64} {
			out := make([]uint8, 3*size*size)
			rs.resizeSquare(flat, 3, 37, 23, mode, size, out)
			for _, v := range out {
				if v != 77 {
					t.Fatalf("mode %v size %d: %d", mode, size, v)
				}
			}
		}
	}
	// Fit keeps the whole picture: a left-dark/right-bright image stays so.
	half := make([]uint8, 20*40)
	for y := range 20 {
		for x := 20; x < 40; x++ {
			half[y*40+x] = 200
		}
	}
	out := make([]uint8, 16)
	rs.resizeSquare(half, 1, 20, 40, ResizeFit, 4, out)
	if out[0] != 0 || out[1] >= 100 || out[2] <= 100 || out[3] != 200 {
		t.Fatalf("fit row %v", out[:4])
	}
}

func TestParseResizeMode(t *testing.T) {
	for s, want := range map[string]ResizeMode{"": ResizeShorterCenter, "shorter-center": ResizeShorterCenter, "fit": ResizeFit} {
		if m, err := ParseResizeMode(s); err != nil || m != want {
			t.Errorf("%q: %v %v", s, m, err)
		}
	}
	if _, err := ParseResizeMode("stretch"); err == nil {
		t.Error("bad mode accepted")
	}
}

// TestResamplePassesMatchGo: the build's resampling passes (C with cgo)
// give the Go reference's bits, on random images and windows (up- and
// downscaling, fractional origins).
func TestResamplePassesMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for trial := range 200 {
		sh, sw := 1+r.IntN(60), 1+r.IntN(60)
		dh, dw := 1+r.IntN(50), 1+r.IntN(50)
		src := make([]uint8, sh*sw)
		for i := range src {
			src[i] = uint8(r.IntN(256))
		}
		rw, rh := (0.2+0.8*r.Float64())*float64(sw), (0.2+0.8*r.Float64())*float64(sh)
		x0, y0 := r.Float64()*(float64(sw)-rw), r.Float64()*(float64(sh)-rh)
		var xw, yw filterWeights
		xw.compute(x0, rw, sw, dw)
		yw.compute(y0, rh, sh, dh)
		ylo, yhi := int(yw.start[0]), int(yw.start[dh-1]+yw.n[dh-1])
		rows := src[ylo*sw : yhi*sw]
		tmpC, tmpGo := make([]float32, (yhi-ylo)*dw), make([]float32, (yhi-ylo)*dw)
		resampleH(rows, sw, &xw, dw, tmpC)
		resampleHGo(rows, sw, &xw, dw, tmpGo)
		outC, outGo := make([]float32, dh*dw), make([]float32, dh*dw)
		resampleV(tmpGo, dw, ylo, &yw, dh, outC)
		resampleVGo(tmpGo, dw, ylo, &yw, dh, outGo)
		for i := range tmpC {
			if math.Float32bits(tmpC[i]) != math.Float32bits(tmpGo[i]) {
				t.Fatalf("trial %d: horizontal pass differs at %d: %v vs %v", trial, i, tmpC[i], tmpGo[i])
			}
		}
		for i := range outC {
			if math.Float32bits(outC[i]) != math.Float32bits(outGo[i]) {
				t.Fatalf("trial %d: vertical pass differs at %d: %v vs %v", trial, i, outC[i], outGo[i])
			}
		}
		// The other order (vertical first, over the source's columns).
		xlo, xhi := int(xw.start[0]), int(xw.start[dw-1]+xw.n[dw-1])
		cols := xhi - xlo
		vC, vGo := make([]float32, dh*cols), make([]float32, dh*cols)
		resampleVU8(src, sw, xlo, cols, &yw, dh, vC)
		resampleVU8Go(src, sw, xlo, cols, &yw, dh, vGo)
		hC, hGo := make([]float32, dh*dw), make([]float32, dh*dw)
		resampleHF(vGo, cols, xlo, &xw, dw, dh, hC)
		resampleHFGo(vGo, cols, xlo, &xw, dw, dh, hGo)
		for i := range vC {
			if math.Float32bits(vC[i]) != math.Float32bits(vGo[i]) {
				t.Fatalf("trial %d: vertical-first pass differs at %d", trial, i)
			}
		}
		for i := range hC {
			if math.Float32bits(hC[i]) != math.Float32bits(hGo[i]) {
				t.Fatalf("trial %d: horizontal second pass differs at %d", trial, i)
			}
			// Both orders compute the same separable filter.
			if d := math.Abs(float64(hGo[i] - outGo[i])); d > 1e-3*(1+math.Abs(float64(outGo[i]))) {
				t.Fatalf("trial %d: the two orders differ at %d: %v vs %v", trial, i, hGo[i], outGo[i])
			}
		}
		// Rounding to uint8, over values beyond both ends and at .5.
		for i := range outGo {
			outGo[i] = outGo[i]*1.3 - 40 + float32(i%3)*0.25
		}
		u8C, u8Go := make([]uint8, len(outGo)), make([]uint8, len(outGo))
		clampU8Plane(outGo, u8C)
		clampU8PlaneGo(outGo, u8Go)
		if !bytes.Equal(u8C, u8Go) {
			t.Fatalf("trial %d: clampU8Plane differs from clampU8", trial)
		}
	}
}
