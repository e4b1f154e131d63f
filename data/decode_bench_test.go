package data

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// photoJPEGs makes n ImageNet-like JPEGs (500×375, quality 90, 4:2:0) from
// the real photos of Debian's darknet package: each a random window of a
// photo (35–100% of its area), resized, with a little per-pixel noise.
func photoJPEGs(b *testing.B, n int) [][]byte {
	photos := darknetPhotos(b)
	var srcs [][]uint8
	var sizes [][2]int
	names := make([]string, 0, len(photos))
	for name := range photos {
		names = append(names, name)
	}
	// Map order is random: sort for the same set in every run.
	for i := range names {
		for j := i + 1; j < len(names); j++ {
			if names[j] < names[i] {
				names[i], names[j] = names[j], names[i]
			}
		}
	}
	for _, name := range names {
		p, h, w, err := decodeStd(photos[name], nil, true, 1)
		if err != nil {
			b.Fatal(err)
		}
		srcs, sizes = append(srcs, p), append(sizes, [2]int{h, w})
	}
	r := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	var rs resampler
	const oh, ow = 375, 500
	chw := make([]uint8, 3*oh*ow)
	for i := range out {
		k := i % len(srcs)
		h, w := float64(sizes[k][0]), float64(sizes[k][1])
		frac := 0.35 + 0.65*r.Float64()
		rw := min(w, h*4/3) * frac
		rh := rw * 3 / 4
		x0, y0 := r.Float64()*(w-rw), r.Float64()*(h-rh)
		rs.region(srcs[k], 3, sizes[k][0], sizes[k][1], x0, y0, rw, rh, oh, ow, func(ch, y int, row []float32) {
			d := chw[(ch*oh+y)*ow : (ch*oh+y+1)*ow]
			for x, v := range row {
				d[x] = clampU8(v + float32(r.IntN(7)-3))
			}
		})
		img := image.NewRGBA(image.Rect(0, 0, ow, oh))
		for y := range oh {
			for x := range ow {
				o := 4 * (y*ow + x)
				img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = chw[y*ow+x], chw[oh*ow+y*ow+x], chw[2*oh*ow+y*ow+x], 255
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			b.Fatal(err)
		}
		out[i] = buf.Bytes()
	}
	return out
}

// BenchmarkDecodeJPEG: decoding ImageNet-like 500×375 JPEGs (quality 90;
// with DPTRAIN_BENCH_JPEG_TREE=DIR up to 3000 files of a tree; with
// DPTRAIN_BENCH_REAL_PHOTOS=1 Debian's sample photos as they are)
// on one goroutine, by this build's JPEG decoder (libjpeg-turbo with cgo)
// and by image/jpeg, at the size DecodeImageAtLeast picks for a target
// shorter side: full (375, no scaling), 187 (1/2), 93 (1/4), 46 (1/8).
// "+resize" adds the resize to the target square (what prepare does).
func BenchmarkDecodeJPEG(b *testing.B) {
	imgs := photoJPEGs(b, 64)
	if dir := os.Getenv("DPTRAIN_BENCH_JPEG_TREE"); dir != "" {
		// Up to 3000 JPEGs of an ImageFolder tree (e.g. one made by
		// scripts/synthimagenet), read into memory first.
		imgs = imgs[:0]
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || len(imgs) >= 3000 {
				return err
			}
			if b, err := os.ReadFile(p); err == nil {
				imgs = append(imgs, b)
			}
			return nil
		})
		if len(imgs) == 0 {
			b.Fatalf("DPTRAIN_BENCH_JPEG_TREE=%s: no files", dir)
		}
	}
	if os.Getenv("DPTRAIN_BENCH_REAL_PHOTOS") != "" {
		// The photos themselves (768×576 and similar, as their cameras and
		// tools encoded them) instead of the re-encoded 500×375 windows.
		imgs = imgs[:0]
		for _, p := range darknetPhotos(b) {
			imgs = append(imgs, p)
		}
	}
	var bytesIn int
	for _, im := range imgs {
		bytesIn += len(im)
	}
	b.Logf("%d JPEGs, mean %d bytes", len(imgs), bytesIn/len(imgs))
	decoders := []struct {
		name   string
		decode func(b []byte, dst []uint8, minSide int) ([]uint8, int, int, error)
	}{
		{jpegDecoder, DecodeImageAtLeast},
		{"image-jpeg", func(b []byte, dst []uint8, minSide int) ([]uint8, int, int, error) {
			cfg, err := jpegConfig(b)
			if err != nil {
				return nil, 0, 0, err
			}
			return decodeStd(b, dst, true, JPEGReduction(cfg.Height, cfg.Width, minSide))
		}},
	}
	if jpegDecoder == "image/jpeg" {
		decoders = decoders[1:]
	}
	for _, d := range decoders {
		for _, side := range []int{0, 187, 93, 46} {
			for _, resize := range []bool{false, true} {
				if resize && side == 0 {
					continue
				}
				name := fmt.Sprintf("%s/side=%d", filepath.Base(d.name), side)
				if resize {
					name += "+resize"
				}
				b.Run(name, func(b *testing.B) {
					var scratch []uint8
					dst := make([]uint8, 3*max(side, 1)*max(side, 1))
					var rs resampler
					i := 0
					for b.Loop() {
						p, h, w, err := d.decode(imgs[i%len(imgs)], scratch, side)
						if err != nil {
							b.Fatal(err)
						}
						if resize {
							rs.resizeSquare(p, 3, h, w, ResizeShorterCenter, side, dst)
						}
						scratch = p
						i++
					}
					reportImages(b, 1)
				})
			}
		}
	}
}
