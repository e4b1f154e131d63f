package data

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// cifarJPEGDir is the shared CIFAR-10 JPEG folder (see ../../shared/README.md).
const cifarJPEGDir = "../../shared/data/cifar10-jpeg"

// cifarTar returns the path of the shared CIFAR-10 tar for split; it fails
// the test in CI (CI=true) and skips it elsewhere when the folder is missing.
func cifarTar(tb testing.TB, split string) string {
	tb.Helper()
	p := filepath.Join(cifarJPEGDir, split+".tar")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("CIFAR-10 JPEG data missing in CI: %v", err)
		}
		tb.Skipf("CIFAR-10 JPEG data not available (%v); skipping", err)
	}
	return p
}

func sqrtF(x float64) float64 { return math.Sqrt(x) }

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// testImage makes a random h×w RGB image and its CHW pixels.
func testImage(h, w int, seed uint64) (*image.NRGBA, []uint8) {
	r := rand.New(rand.NewPCG(seed, 2))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	chw := make([]uint8, 3*h*w)
	for y := range h {
		for x := range w {
			c := color.NRGBA{uint8(r.Uint32()), uint8(r.Uint32()), uint8(r.Uint32()), 255}
			img.SetNRGBA(x, y, c)
			chw[y*w+x], chw[h*w+y*w+x], chw[2*h*w+y*w+x] = c.R, c.G, c.B
		}
	}
	return img, chw
}

func pngBytes(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// smoothImage is a colour gradient (JPEG-friendly, unlike noise).
func smoothImage(h, w int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{uint8(255 * x / w), uint8(255 * y / h), uint8(128 + 60*(x-y)/(w+h)), 255})
		}
	}
	return img
}
