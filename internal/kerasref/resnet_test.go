package kerasref

import (
	"encoding/json"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

func TestResNet50ModelJSONEmbedded(t *testing.T) {
	var mf modelFile
	if err := json.Unmarshal(ResNet50ModelJSON, &mf); err != nil {
		t.Fatal(err)
	}
	topo, err := parseTopology(mf.ModelTopology)
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.layers) != 177 || len(topo.ordered) != 177 || topo.input.name != "input_1" || topo.output.name != "fc1000" {
		t.Errorf("%d layers, %d reachable, input %q, output %q", len(topo.layers), len(topo.ordered), topo.input.name, topo.output.name)
	}
	n := 0
	for _, g := range mf.WeightsManifest {
		n += len(g.Weights)
	}
	if len(mf.WeightsManifest) != 1 || len(mf.WeightsManifest[0].Paths) != 25 || n != 320 {
		t.Errorf("manifest: %d groups, %d weights", len(mf.WeightsManifest), n)
	}
}

// The synthetic ResNet-50 runs at 64×64 (and at an odd size), its logits
// are finite and spread out, and Run is softmax(Logits).
func TestSyntheticResNet50(t *testing.T) {
	dir := t.TempDir()
	start := time.Now()
	if err := WriteSynthetic(dir, ResNet50ModelJSON, 1, 3); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("write+load: %v", time.Since(start))
	r := rand.New(rand.NewPCG(9, 9))
	for _, sz := range [][2]int{{64, 64}, {57, 71}} {
		h, w := sz[0], sz[1]
		rgb := make([]float64, h*w*3)
		for i := range rgb {
			rgb[i] = math.Floor(256 * r.Float64())
		}
		x := CaffePreprocess(rgb, h, w)
		start := time.Now()
		logits, err := m.Logits(x, h, w)
		if err != nil {
			t.Fatal(err)
		}
		probs, err := m.Run(x, h, w)
		if err != nil {
			t.Fatal(err)
		}
		if len(logits) != 1000 || len(probs) != 1000 {
			t.Fatalf("%d logits, %d probs", len(logits), len(probs))
		}
		mean, sd, sum := 0.0, 0.0, 0.0
		for i, v := range logits {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("logit %d = %v", i, v)
			}
			mean += v / 1000
			sum += probs[i]
		}
		for _, v := range logits {
			sd += (v - mean) * (v - mean) / 1000
		}
		sd = math.Sqrt(sd)
		t.Logf("%d×%d: 2 forwards %v, logits mean %.3g std %.3g", h, w, time.Since(start), mean, sd)
		if !(sd > 1e-3) || sd > 1e3 {
			t.Errorf("%d×%d: logits std %v", h, w, sd)
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("probabilities sum to %v", sum)
		}
		closeSlices(t, "softmax(Logits) vs Run", Softmax(logits), probs, 1e-12)
	}
}

// TestRealResNet50Eagle runs the real weights (DPTRAIN_KERAS_REAL names
// the directory holding model.json and its 25 shards) on darknet's eagle
// photo and expects ImageNet class 22, bald_eagle.
func TestRealResNet50Eagle(t *testing.T) {
	dir := os.Getenv("DPTRAIN_KERAS_REAL")
	if dir == "" {
		t.Skip("DPTRAIN_KERAS_REAL not set")
	}
	const photo = "/usr/share/darknet/data/eagle.jpg"
	f, err := os.Open(photo)
	if err != nil {
		t.Skipf("no test photo: %v", err)
	}
	defer f.Close()
	im, err := jpeg.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	const size = 224
	rgb := centerCropResize(im, size)
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	probs, err := m.Run(CaffePreprocess(rgb, size, size), size, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("224×224 forward: %v", time.Since(start))
	labels := map[string]string{}
	if b, err := os.ReadFile(filepath.Join(dir, "..", "assets", "labels.json")); err == nil {
		json.Unmarshal(b, &labels)
	}
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	for _, i := range idx[:5] {
		t.Logf("class %d %s: %.5f", i, labels[strconv.Itoa(i)], probs[i])
	}
	if idx[0] != 22 {
		t.Errorf("top-1 class %d, want 22 (bald_eagle)", idx[0])
	}
}

// centerCropResize crops the central square of im and resizes it to
// size×size with bilinear interpolation (half-pixel centres), returning
// RGB values in 0..255, channels-last.
func centerCropResize(im image.Image, size int) []float64 {
	bd := im.Bounds()
	side := min(bd.Dx(), bd.Dy())
	x0, y0 := bd.Min.X+(bd.Dx()-side)/2, bd.Min.Y+(bd.Dy()-side)/2
	px := func(x, y, c int) float64 {
		x, y = min(max(x, 0), side-1), min(max(y, 0), side-1)
		r, g, b, _ := im.At(x0+x, y0+y).RGBA()
		return float64([3]uint32{r, g, b}[c]) / 257
	}
	out := make([]float64, size*size*3)
	scale := float64(side) / float64(size)
	for oy := range size {
		sy := (float64(oy)+0.5)*scale - 0.5
		iy := int(math.Floor(sy))
		fy := sy - float64(iy)
		for ox := range size {
			sx := (float64(ox)+0.5)*scale - 0.5
			ix := int(math.Floor(sx))
			fx := sx - float64(ix)
			for c := range 3 {
				v := (1-fy)*((1-fx)*px(ix, iy, c)+fx*px(ix+1, iy, c)) + fy*((1-fx)*px(ix, iy+1, c)+fx*px(ix+1, iy+1, c))
				out[(oy*size+ox)*3+c] = v
			}
		}
	}
	return out
}
