package train

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"dptrain/data"
)

// TestWrappersForwardWholeImages: the training set's wrappers (the first
// n examples, the black-box audit's canary set) pass a variable-size
// prepared set's whole images to the loader, so that its resized crops
// are those of the set itself.
func TestWrappersForwardWholeImages(t *testing.T) {
	root := t.TempDir()
	for i, c := range []string{"a", "a", "b", "b"} {
		img := image.NewNRGBA(image.Rect(0, 0, 16+i, 8))
		for x := range 16 + i {
			for y := range 8 {
				img.SetNRGBA(x, y, color.NRGBA{uint8(10 * x), uint8(20 * y), uint8(i), 255})
			}
		}
		var b bytes.Buffer
		png.Encode(&b, img)
		os.MkdirAll(filepath.Join(root, c), 0o755)
		os.WriteFile(filepath.Join(root, c, string(rune('p'+i))+".png"), b.Bytes(), 0o644)
	}
	out := filepath.Join(t.TempDir(), "p")
	if _, err := data.Prepare(data.PrepareOptions{Src: root, Out: out, ShortSide: 8}); err != nil {
		t.Fatal(err)
	}
	ds, err := data.OpenPrepared(out, data.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	inner := ds.(data.SizedImager)
	for name, tc := range map[string]struct {
		ds    data.Dataset
		index []int // wrapper example → inner example
	}{
		"subset":    {limit(ds, 3), []int{0, 1, 2}},
		"canary":    {&canarySet{Dataset: ds, index: []int{3, 1}, label: []int{0, -1}}, []int{3, 1}},
		"unwrapped": {ds, []int{0, 1, 2, 3}},
	} {
		si, ok := tc.ds.(data.SizedImager)
		if !ok {
			t.Fatalf("%s: %T does not forward data.SizedImager", name, tc.ds)
		}
		if si.MaxPixels() != inner.MaxPixels() {
			t.Errorf("%s: MaxPixels %d, the set's %d", name, si.MaxPixels(), inner.MaxPixels())
		}
		got, want := make([]uint8, inner.MaxPixels()), make([]uint8, inner.MaxPixels())
		for i, k := range tc.index {
			h, w, err := si.ImageSized(i, got)
			wh, ww, werr := inner.ImageSized(k, want)
			if err != nil || werr != nil || h != wh || w != ww || !bytes.Equal(got[:3*h*w], want[:3*h*w]) || w <= 8 {
				t.Fatalf("%s example %d: %d×%d (%v), the set's example %d is %d×%d (%v)", name, i, h, w, err, k, wh, ww, werr)
			}
		}
	}
}
