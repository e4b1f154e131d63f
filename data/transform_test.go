package data

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// window returns the oh×ow window at (oy, ox) of the c×h×w image padded by
// pad (zero or reflect), flipped if asked, as float32 v/255.
func window(src []uint8, c, h, w, oy, ox, oh, ow int, reflect, flip bool) []float32 {
	at := func(i, n int) int {
		if i >= 0 && i < n {
			return i
		}
		if !reflect {
			return -1
		}
		if i < 0 {
			return -i
		}
		return 2*(n-1) - i
	}
	out := make([]float32, c*oh*ow)
	for ch := range c {
		for y := range oh {
			for x := range ow {
				xx := x
				if flip {
					xx = ow - 1 - x
				}
				sy, sx := at(oy+y, h), at(ox+xx, w)
				if sy >= 0 && sx >= 0 {
					out[(ch*oh+y)*ow+x] = float32(src[(ch*h+sy)*w+sx]) / 255
				}
			}
		}
	}
	return out
}

func TestRandomCropFlip(t *testing.T) {
	const c, h, w, pad = 3, 12, 10, 3
	_, src := testImage(h, w, 4)
	for _, reflect := range []bool{false, true} {
		tr := Transform{Crop: CropRandom, Pad: pad, PadReflect: reflect, Flip: true}
		dst := make([]float32, c*h*w)
		offsets := map[[3]int]int{}
		cands := map[[3]int][]float32{}
		for oy := -pad; oy <= pad; oy++ {
			for ox := -pad; ox <= pad; ox++ {
				for f := range 2 {
					cands[[3]int{oy, ox, f}] = window(src, c, h, w, oy, ox, h, w, reflect, f == 1)
				}
			}
		}
		const draws = 3000
		for idx := range draws {
			if err := tr.Apply(dst, src, c, h, w, KeyFromSeed(9), 5, idx, 0); err != nil {
				t.Fatal(err)
			}
			found := false
			for k, cand := range cands {
				if slices.Equal(dst, cand) {
					offsets[k]++
					found = true
					break
				}
			}
			if !found {
				t.Fatalf("reflect=%v example %d: output is no flipped/unflipped padded window", reflect, idx)
			}
		}
		// Uniform over the 7×7 offsets × 2 flips: chi-square, 97 df.
		cells := float64((2*pad + 1) * (2*pad + 1) * 2)
		e := draws / cells
		var chi2 float64
		for oy := -pad; oy <= pad; oy++ {
			for ox := -pad; ox <= pad; ox++ {
				for f := range 2 {
					d := float64(offsets[[3]int{oy, ox, f}]) - e
					chi2 += d * d / e
				}
			}
		}
		if df := cells - 1; math.Abs(chi2-df) > 5*math.Sqrt(2*df) {
			t.Errorf("reflect=%v: crop offsets/flip chi-square %.1f with %v df", reflect, chi2, df)
		}
	}
}

func TestTransformDeterminism(t *testing.T) {
	_, src := testImage(16, 16, 1)
	tr := Transform{Crop: CropRandomResized, Height: 8, Width: 8, Flip: true, Mean: CIFAR10Mean, Std: CIFAR10Std}
	a, b := make([]float32, 3*64), make([]float32, 3*64)
	tr.Apply(a, src, 3, 16, 16, KeyFromSeed(1), 2, 3, 0)
	tr.Apply(b, src, 3, 16, 16, KeyFromSeed(1), 2, 3, 0)
	if !slices.Equal(a, b) {
		t.Fatal("same (key, step, index, k) gave different outputs")
	}
	differ := 0
	for _, args := range [][4]int{{2, 2, 3, 0}, {1, 3, 3, 0}, {1, 2, 4, 0}, {1, 2, 3, 1}} {
		tr.Apply(b, src, 3, 16, 16, KeyFromSeed(uint64(args[0])), int64(args[1]), args[2], args[3])
		if !slices.Equal(a, b) {
			differ++
		}
	}
	if differ < 4 {
		t.Fatalf("only %d of 4 changes of key/step/index/k changed the output", differ)
	}
}

func TestNormaliseAndCentre(t *testing.T) {
	_, src := testImage(6, 8, 2)
	mean, std := []float32{0.1, 0.5, 0.9}, []float32{0.2, 0.3, 0.4}
	dst := make([]float32, 3*48)
	if err := (Transform{Mean: mean, Std: std}).Apply(dst, src, 3, 6, 8, Key{}, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	for i, v := range src {
		ch := i / 48
		if want := (float32(v)/255 - mean[ch]) / std[ch]; math.Abs(float64(dst[i]-want)) > 1e-5 {
			t.Fatalf("value %d: %v want %v", i, dst[i], want)
		}
	}
	dst = dst[:3*4*4]
	(Transform{Crop: CropCenter, Height: 4, Width: 4}).Apply(dst, src, 3, 6, 8, Key{}, 0, 0, 0)
	if !slices.Equal(dst, window(src, 3, 6, 8, 1, 2, 4, 4, false, false)) {
		t.Fatal("centre crop is not the centre window")
	}
	// Eval of a random crop is the centre crop.
	(Transform{Crop: CropRandom, Pad: 4, Height: 4, Width: 4, Flip: true}).Eval().Apply(dst, src, 3, 6, 8, Key{}, 5, 1, 0)
	if !slices.Equal(dst, window(src, 3, 6, 8, 1, 2, 4, 4, false, false)) {
		t.Fatal("Eval() of random crop is not the centre crop")
	}
}

func TestResizedCrops(t *testing.T) {
	_, src := testImage(20, 20, 3)
	out := make([]float32, 3*400)
	// Whole-image, same-size windows are the identity.
	for _, tr := range []Transform{
		{Crop: CropRandomResized, Scale: [2]float64{1, 1}, Ratio: [2]float64{1, 1}},
		{Crop: CropCenterResized, CenterFraction: 1},
	} {
		tr.Apply(out, src, 3, 20, 20, KeyFromSeed(1), 1, 1, 0)
		if !approxEqual(out, window(src, 3, 20, 20, 0, 0, 20, 20, false, false), 1e-6) {
			t.Fatalf("%+v is not the identity", tr)
		}
	}
	// Random windows: inside the image, area and aspect ratio in range.
	tr := Transform{Crop: CropRandomResized, Height: 8, Width: 8, Scale: [2]float64{0.25, 0.5}, Ratio: [2]float64{0.5, 2}}
	a := newAugmenter(tr, KeyFromSeed(1), 3, 200, 300)
	var sumArea float64
	for i := range 2000 {
		a.seedFor(0, i, 0)
		x0, y0, rw, rh := a.resizedWindow()
		if x0 < 0 || y0 < 0 || x0+rw > 300 || y0+rh > 200 {
			t.Fatalf("window %v %v %v %v outside 300×200", x0, y0, rw, rh)
		}
		frac := rw * rh / 60000
		if frac < 0.245 || frac > 0.51 || rw/rh < 0.49 || rw/rh > 2.02 {
			t.Fatalf("window %v×%v: area fraction %.3f ratio %.3f", rw, rh, frac, rw/rh)
		}
		sumArea += frac
	}
	if m := sumArea / 2000; math.Abs(m-0.375) > 0.01 {
		t.Errorf("mean area fraction %.3f, want ≈ 0.375", m)
	}
	// A constant image stays constant.
	flat := make([]uint8, 3*30*40)
	for i := range flat {
		flat[i] = 51
	}
	out = out[:3*64]
	tr.Apply(out, flat, 3, 30, 40, KeyFromSeed(1), 1, 1, 0)
	for _, v := range out {
		if math.Abs(float64(v)-0.2) > 1e-5 {
			t.Fatalf("constant image gave %v", v)
		}
	}
}

func TestTransformValidate(t *testing.T) {
	tests := []struct {
		tr   Transform
		want string
	}{
		{Transform{}, ""},
		{Transform{Height: 5}, "with no crop"},
		{Transform{Crop: CropRandom, Height: 40, Width: 40, Pad: 2}, "larger than the padded input"},
		{Transform{Crop: CropRandom, Pad: 40, PadReflect: true}, "reflect padding"},
		{Transform{Crop: CropCenter, Height: 33}, "larger than the input"},
		{Transform{Mean: []float32{0}, Std: []float32{1}}, "expected 3"},
		{Transform{Mean: []float32{0, 0, 0}, Std: []float32{1, 0, 1}}, "std[1]"},
		{Transform{Crop: CropRandomResized, Scale: [2]float64{0.5, 0.2}}, "scale"},
		{Transform{Crop: CropRandomResized, Ratio: [2]float64{-1, 1}}, "ratio"},
		{Transform{Crop: CropCenterResized, CenterFraction: 2}, "centre fraction"},
		{Transform{Crop: Crop(42)}, "unknown crop"},
	}
	for _, tt := range tests {
		err := tt.tr.Validate(3, 32, 32)
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.tr, err, tt.want)
		}
	}
}

func approxEqual(a, b []float32, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > tol {
			return false
		}
	}
	return true
}

// TestParseCrop: every crop has a name that round-trips (so the config
// reaches each, centre-resized included), "" is CropNone, and an unknown
// name lists the names.
func TestParseCrop(t *testing.T) {
	names := Crops()
	if len(names) != int(CropCenterResized)+1 {
		t.Fatalf("Crops() = %v: a crop without a name", names)
	}
	for i, name := range names {
		c, err := ParseCrop(name)
		if err != nil || c != Crop(i) || c.String() != name {
			t.Errorf("ParseCrop(%q) = %v, %v; want Crop %d", name, c, err, i)
		}
	}
	for name, want := range map[string]Crop{"": CropNone, "none": CropNone, "random": CropRandom,
		"random-resized": CropRandomResized, "center": CropCenter, "center-resized": CropCenterResized} {
		if c, err := ParseCrop(name); err != nil || c != want {
			t.Errorf("ParseCrop(%q) = %v, %v; want %v", name, c, err, want)
		}
	}
	_, err := ParseCrop("centre")
	if want := `want one of none, random, random-resized, center, center-resized; got "centre"`; err == nil || err.Error() != want {
		t.Errorf("unknown crop: %v, want %s", err, want)
	}
	if got := Crop(-1).String(); got != "Crop(-1)" {
		t.Errorf("Crop(-1).String() = %q", got)
	}
	names[0] = "changed"
	if Crops()[0] != "none" {
		t.Error("Crops returns the package's own slice")
	}
}
