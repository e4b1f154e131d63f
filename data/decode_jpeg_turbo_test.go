//go:build cgo && !noturbo

package data

import (
	"bytes"
	"fmt"
	"testing"
)

// TestTurboMatchesImageJPEG checks libjpeg-turbo against image/jpeg (the
// pure-Go build's decoder, an independent implementation) on the CIFAR-10
// JPEGs and on real photos, at full size and at each DCT scale against
// image/jpeg's full decode averaged over f×f blocks: the same sizes, and
// pixels within the stated tolerance (measured on Debian's libjpeg-turbo
// 2.1.5: full size mean |Δ| 0.20 (at most 0.61 for one image), max 4;
// scaled mean |Δ| 0.3–1.7, max 74 at sharp edges, where the DCT-domain scaling and a box average
// differ most).
func TestTurboMatchesImageJPEG(t *testing.T) {
	type tol struct {
		mean    float64 // per image
		setMean float64 // averaged over a set's images
		worst   int     // any pixel
	}
	tolerance := map[int]tol{1: {1, 0.3, 6}, 2: {3.5, 1.5, 96}, 4: {4.5, 2, 96}, 8: {5.5, 2.5, 96}}
	sets := map[string]map[string][]byte{"cifar": cifarJPEGs(t, 300), "photos": darknetPhotos(t)}
	for set, imgs := range sets {
		for _, f := range []int{1, 2, 4, 8} {
			sum, worstAll := 0.0, 0
			for name, b := range imgs {
				cfg, err := jpegConfig(b)
				if err != nil {
					t.Fatal(name, err)
				}
				minSide := (min(cfg.Width, cfg.Height) + f - 1) / f
				if g := JPEGReduction(cfg.Height, cfg.Width, minSide); g != f {
					t.Fatalf("%s: JPEGReduction(%d, %d, %d) = %d, want %d", name, cfg.Height, cfg.Width, minSide, g, f)
				}
				got, h, w, err := DecodeImageAtLeast(b, nil, minSide)
				if err != nil {
					t.Fatal(name, err)
				}
				want, wh, ww, err := decodeStd(b, nil, true, f)
				if err != nil {
					t.Fatal(name, err)
				}
				if h != wh || w != ww || h != (cfg.Height+f-1)/f || w != (cfg.Width+f-1)/f {
					t.Fatalf("%s 1/%d of %d×%d: turbo %d×%d, image/jpeg %d×%d", name, f, cfg.Height, cfg.Width, h, w, wh, ww)
				}
				m, worst := pixelDiff(got, want)
				if m > tolerance[f].mean {
					t.Errorf("%s 1/%d: mean |Δ| %.3f against image/jpeg: expected ≤ %v", name, f, m, tolerance[f].mean)
				}
				sum += m
				worstAll = max(worstAll, worst)
			}
			if worstAll > tolerance[f].worst {
				t.Errorf("%s 1/%d: largest |Δ| %d against image/jpeg: expected ≤ %d", set, f, worstAll, tolerance[f].worst)
			}
			if m := sum / float64(len(imgs)); m > tolerance[f].setMean {
				t.Errorf("%s 1/%d: mean |Δ| %.3f over %d images against image/jpeg: expected ≤ %v", set, f, m, len(imgs), tolerance[f].setMean)
			}
			t.Logf("%s 1/%d: mean |Δ| %.3f, max %d over %d images", set, f, sum/float64(len(imgs)), worstAll, len(imgs))
		}
	}
}

// TestTurboResizedMatchesFullDecode checks what prepare stores: a photo
// decoded at a DCT scale, then resized to the target, against image/jpeg's
// full-size decode resized the same way, and against the pure-Go build's
// path (full decode, f×f box average, resize).
func TestTurboResizedMatchesFullDecode(t *testing.T) {
	for name, b := range darknetPhotos(t) {
		for _, size := range []int{64, 128, 224} {
			for _, mode := range []ResizeMode{ResizeShorterCenter, ResizeFit} {
				got, h, w, err := DecodeImageAtLeast(b, nil, size)
				if err != nil {
					t.Fatal(name, err)
				}
				full, fh, fw, err := decodeStd(b, nil, true, 1)
				if err != nil {
					t.Fatal(name, err)
				}
				if min(h, w) < size {
					t.Fatalf("%s: decoded %d×%d for size %d: the shorter side must stay ≥ the size", name, h, w, size)
				}
				ref := ResizeImage(full, 3, fh, fw, mode, size)
				m, worst := pixelDiff(ResizeImage(got, 3, h, w, mode, size), ref)
				boxed, bh, bw, _ := decodeStd(b, nil, true, JPEGReduction(fh, fw, size))
				bm, bworst := pixelDiff(ResizeImage(boxed, 3, bh, bw, mode, size), ref)
				// Most of the difference is resampling from the reduced
				// size, which box averaging shows as well (measured: DCT
				// 0.2–5.0, box 0.0–4.6, the DCT at most 0.85 above).
				if m > bm+1 || worst > bworst+32 || m > 6 {
					t.Errorf("%s at %d (%v, decoded at %d×%d): mean |Δ| %.3f, max %d from the full decode resized; box-reduced %.3f, max %d: expected at most 1 (mean) and 32 (max) above it", name, size, mode, h, w, m, worst, bm, bworst)
				}
			}
		}
	}
}

// TestTurboIsDeterministic decodes the same photos concurrently and checks
// every decode is bit-identical (handles and buffers are pooled).
func TestTurboIsDeterministic(t *testing.T) {
	photos := darknetPhotos(t)
	want := map[string][]uint8{}
	for name, b := range photos {
		p, _, _, err := DecodeImageAtLeast(b, nil, 100)
		if err != nil {
			t.Fatal(err)
		}
		want[name] = p
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			var scratch []uint8
			for range 3 {
				for name, b := range photos {
					p, _, _, err := DecodeImageAtLeast(b, scratch, 100)
					if err == nil && !bytes.Equal(p, want[name]) {
						err = fmt.Errorf("%s decoded differently", name)
					}
					if err != nil {
						errs <- err
						return
					}
					scratch = p
				}
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
