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
// dropped (PNG colours are un-premultiplied).
func DecodeImage(b []byte, dst []uint8) (pix []uint8, h, w int, err error) {
	var decode func([]byte) (image.Image, error)
	var cfg image.Config
	switch {
	case len(b) >= 2 && b[0] == 0xff && b[1] == 0xd8:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(b))
		decode = func(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) }
	case len(b) >= 8 && string(b[:8]) == "\x89PNG\r\n\x1a\n":
		cfg, err = png.DecodeConfig(bytes.NewReader(b))
		decode = func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }
	default:
		return nil, 0, 0, errors.New("unknown image format: expected JPEG or PNG content")
	}
	if err != nil {
		return nil, 0, 0, err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return nil, 0, 0, fmt.Errorf("image size %d×%d: expected 1 to %d pixels", cfg.Width, cfg.Height, maxImagePixels)
	}
	held := decodeBudget.acquire(decodeEstimate(cfg))
	defer func() { decodeBudget.release(held) }()
	img, err := decode(b)
	if err != nil {
		return nil, 0, 0, err
	}
	r := img.Bounds()
	h, w = r.Dy(), r.Dx()
	if n := 3 * h * w; cap(dst) >= n {
		pix = dst[:n]
	} else {
		pix = make([]uint8, n)
	}
	toCHW(img, pix)
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
