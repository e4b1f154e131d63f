package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"path"
	"runtime/debug"
	"strings"
)

// maxImagePixels bounds the pixel count an image header may claim before
// anything is allocated (a corrupt header must not exhaust memory).
const maxImagePixels = 1 << 27

var errNotImage = errors.New("not an image: expected a .jpg, .jpeg or .png file")

// isImageName reports whether name has an image extension this package reads.
func isImageName(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// DecodeImage decodes a JPEG or PNG image (recognised by its content) into
// 3-channel CHW uint8, returning the pixels (in dst if it is large enough)
// and the size. Grey images are replicated to three channels; alpha is
// dropped (PNG colours are un-premultiplied). JPEG goes through
// libjpeg-turbo in the cgo build (see DecodeImageAtLeast), image/jpeg in
// the pure-Go build (CGO_ENABLED=0 or the noturbo build tag).
func DecodeImage(b []byte, dst []uint8) (pix []uint8, h, w int, err error) {
	return DecodeImageAtLeast(b, dst, 0)
}

// DecodeImageAtLeast is DecodeImage that may decode a JPEG at a reduced
// size: 1/2, 1/4 or 1/8 of each side (rounded up), the smallest at which
// the shorter side is still at least minSide (minSide ≤ 0: full size).
// libjpeg-turbo scales in the DCT domain, skipping most of the decoding
// work; the pure-Go build decodes at full size and averages f×f blocks
// (see JPEGReduction), giving the same size and, within the tolerance the
// tests state, the same pixels. PNG images are always decoded at full
// size.
func DecodeImageAtLeast(b []byte, dst []uint8, minSide int) (pix []uint8, h, w int, err error) {
	switch {
	case len(b) >= 2 && b[0] == 0xff && b[1] == 0xd8:
		return decodeJPEG(b, dst, minSide)
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		return decodeStd(b, dst, false, 1)
	}
	return nil, 0, 0, errors.New("unknown image format: expected JPEG or PNG content")
}

// JPEGReduction returns the factor f ∈ {1, 2, 4, 8} by which
// DecodeImageAtLeast divides the sides of an h×w JPEG for minSide: the
// largest with ⌈min(h,w)/f⌉ ≥ minSide.
func JPEGReduction(h, w, minSide int) int {
	short := min(h, w)
	f := 1
	for f < 8 && minSide > 0 && (short+2*f-1)/(2*f) >= minSide {
		f *= 2
	}
	return f
}

// checkImageSize refuses a header size outside 1…maxImagePixels pixels
// before anything is allocated.
func checkImageSize(w, h int) error {
	if w <= 0 || h <= 0 || int64(w)*int64(h) > maxImagePixels {
		return fmt.Errorf("image size %d×%d: expected 1 to %d pixels", w, h, maxImagePixels)
	}
	return nil
}

// decodeStd decodes with the standard library (image/jpeg when jpg, else
// image/png), then divides the sides by f (1, 2, 4 or 8) by averaging f×f
// blocks.
func decodeStd(b []byte, dst []uint8, jpg bool, f int) (pix []uint8, h, w int, err error) {
	var cfg image.Config
	decode := png.Decode
	if jpg {
		decode = jpeg.Decode
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(b))
	} else {
		cfg, err = png.DecodeConfig(bytes.NewReader(b))
	}
	if err != nil {
		return nil, 0, 0, err
	}
	if err := checkImageSize(cfg.Width, cfg.Height); err != nil {
		return nil, 0, 0, err
	}
	held := decodeBudget.acquire(decodeEstimate(cfg))
	defer func() { decodeBudget.release(held) }()
	img, err := decode(bytes.NewReader(b))
	if err != nil {
		return nil, 0, 0, err
	}
	r := img.Bounds()
	h, w = r.Dy(), r.Dx()
	full := dst
	if f > 1 {
		full = nil // dst receives the reduced image
	}
	if n := 3 * h * w; cap(full) >= n {
		pix = full[:n]
	} else {
		pix = make([]uint8, n)
	}
	toCHW(img, pix)
	if f > 1 {
		rh, rw := (h+f-1)/f, (w+f-1)/f
		out := dst
		if n := 3 * rh * rw; cap(out) >= n {
			out = out[:n]
		} else {
			out = make([]uint8, n)
		}
		reduceCHW(pix, 3, h, w, f, out)
		pix, h, w = out, rh, rw
	}
	if held >= largeDecodeBytes {
		// Hand the decoder's memory back before the next large image is
		// decoded: with the garbage collector's usual slack the process
		// would otherwise hold about twice the budget.
		img = nil
		decodeBudget.release(held)
		held = 0
		debug.FreeOSMemory()
	}
	return pix, h, w, nil
}

// reduceCHW divides the sides of a c×h×w image by f, each output pixel the
// rounded mean of its f×f block (clipped at the right and bottom edges),
// into dst (c×⌈h/f⌉×⌈w/f⌉).
func reduceCHW(src []uint8, c, h, w, f int, dst []uint8) {
	rh, rw := (h+f-1)/f, (w+f-1)/f
	sum := make([]uint32, rw)
	for ch := range c {
		plane := src[ch*h*w : (ch+1)*h*w]
		for oy := range rh {
			clear(sum)
			y1 := min(oy*f+f, h)
			for y := oy * f; y < y1; y++ {
				row := plane[y*w : (y+1)*w]
				for x, v := range row {
					sum[x/f] += uint32(v)
				}
			}
			o := dst[(ch*rh+oy)*rw : (ch*rh+oy+1)*rw]
			bh := uint32(y1 - oy*f)
			for ox := range rw {
				n := bh * uint32(min(ox*f+f, w)-ox*f)
				o[ox] = uint8((sum[ox] + n/2) / n)
			}
		}
	}
}

// toCHW converts img into 3-channel CHW pixels (len 3·h·w).
func toCHW(img image.Image, pix []uint8) {
	r := img.Bounds()
	h, w := r.Dy(), r.Dx()
	hw := h * w
	R, G, B := pix[:hw], pix[hw:2*hw], pix[2*hw:3*hw]
	switch m := img.(type) {
	case *image.YCbCr:
		var shift int // log2 of the horizontal chroma subsampling
		switch m.SubsampleRatio {
		case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
			shift = 1
		case image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410:
			shift = 2
		}
		x0 := r.Min.X
		for y := range h {
			yrow := m.Y[m.YOffset(x0, r.Min.Y+y):][:w]
			ci0 := m.COffset(x0, r.Min.Y+y) - x0>>shift
			o := y * w
			for x, yv := range yrow {
				ci := ci0 + (x0+x)>>shift
				R[o+x], G[o+x], B[o+x] = ycbcrToRGB(yv, m.Cb[ci], m.Cr[ci])
			}
		}
	case *image.Gray:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+w]
			copy(R[y*w:], row)
			copy(G[y*w:], row)
			copy(B[y*w:], row)
		}
	case *image.NRGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				o := y*w + x
				R[o], G[o], B[o] = row[4*x], row[4*x+1], row[4*x+2]
			}
		}
	case *image.RGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				o := y*w + x
				R[o], G[o], B[o] = unpremul(row[4*x], row[4*x+3]), unpremul(row[4*x+1], row[4*x+3]), unpremul(row[4*x+2], row[4*x+3])
			}
		}
	default:
		for y := range h {
			for x := range w {
				c := color.NRGBAModel.Convert(img.At(r.Min.X+x, r.Min.Y+y)).(color.NRGBA)
				o := y*w + x
				R[o], G[o], B[o] = c.R, c.G, c.B
			}
		}
	}
}

func unpremul(v, a uint8) uint8 {
	switch a {
	case 0xff:
		return v
	case 0:
		return 0
	}
	return uint8((uint32(v)*0xff + uint32(a)/2) / uint32(a))
}

// ycbcrToRGB is JFIF's YCbCr→RGB in 16.16 fixed point, as image/color's
// YCbCrToRGB (written out so that it inlines in the hot loop).
func ycbcrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	r := yy + 91881*cr1
	g := yy - 22554*cb1 - 46802*cr1
	b := yy + 116130*cb1
	return clamp1616(r), clamp1616(g), clamp1616(b)
}

func clamp1616(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	return uint8(^(v >> 31))
}

// jpegConfig reads a JPEG header with image/jpeg.
func jpegConfig(b []byte) (image.Config, error) {
	return jpeg.DecodeConfig(bytes.NewReader(b))
}
