package data

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// TestToCHWFastPaths checks the YCbCr/Gray/RGBA fast paths against the
// generic colour-model conversion.
func TestToCHWFastPaths(t *testing.T) {
	src := smoothImage(9, 13)
	gray := image.NewGray(src.Bounds())
	rgba := image.NewRGBA(src.Bounds())
	for y := range 9 {
		for x := range 13 {
			gray.Set(x, y, src.At(x, y))
			c := src.NRGBAAt(x, y)
			c.A = uint8(100 + 10*x)
			rgba.Set(x, y, c)
		}
	}
	var imgs []image.Image
	for _, q := range []int{50, 95} {
		for _, im := range []image.Image{src, gray} {
			var b bytes.Buffer
			jpeg.Encode(&b, im, &jpeg.Options{Quality: q})
			d, err := jpeg.Decode(&b)
			if err != nil {
				t.Fatal(err)
			}
			imgs = append(imgs, d)
			if sub, ok := d.(*image.YCbCr); ok { // odd origin: chroma offsets
				imgs = append(imgs, sub.SubImage(image.Rect(1, 1, 12, 8)))
			}
		}
	}
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		m := image.NewYCbCr(image.Rect(0, 0, 13, 9), ratio)
		for i := range m.Y {
			m.Y[i] = uint8(i * 37)
		}
		for i := range m.Cb {
			m.Cb[i], m.Cr[i] = uint8(i*53), uint8(255-i*29)
		}
		imgs = append(imgs, m, m.SubImage(image.Rect(3, 1, 12, 9)))
	}
	imgs = append(imgs, gray, rgba, src, src.SubImage(image.Rect(2, 3, 11, 8)))
	for k, im := range imgs {
		r := im.Bounds()
		fast := make([]uint8, 3*r.Dx()*r.Dy())
		toCHW(im, fast)
		ref := make([]uint8, len(fast))
		toCHW(opaqueGeneric{im}, ref)
		for i := range fast {
			if absInt(int(fast[i])-int(ref[i])) > 1 {
				t.Fatalf("image %d (%T): byte %d fast %d generic %d", k, im, i, fast[i], ref[i])
			}
		}
	}
}

// opaqueGeneric hides the concrete type so toCHW takes its generic path.
type opaqueGeneric struct{ image.Image }

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
func FuzzDecodeImage(f *testing.F) {
	img, _ := testImage(5, 4, 1)
	f.Add(pngBytes(f, img))
	f.Add(jpegBytes(f, img))
	f.Add(jpegBytes(f, image.NewGray(image.Rect(0, 0, 3, 2))))
	f.Add(pngBytes(f, image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.White, color.Black})))
	f.Fuzz(func(t *testing.T, b []byte) {
		pix, h, w, err := DecodeImage(b, nil)
		if err != nil {
			return
		}
		if h <= 0 || w <= 0 || len(pix) != 3*h*w {
			t.Fatalf("%d×%d with %d bytes", h, w, len(pix))
		}
	})
}
func TestYCbCrToRGBMatchesStdlib(t *testing.T) {
	step := 1
	if testing.Short() {
		step = 3
	}
	for y := 0; y < 256; y += step {
		for cb := range 256 {
			for cr := range 256 {
				r, g, b := ycbcrToRGB(uint8(y), uint8(cb), uint8(cr))
				R, G, B := color.YCbCrToRGB(uint8(y), uint8(cb), uint8(cr))
				if r != R || g != G || b != B {
					t.Fatalf("YCbCr(%d,%d,%d): %d,%d,%d want %d,%d,%d", y, cb, cr, r, g, b, R, G, B)
				}
			}
		}
	}
}
