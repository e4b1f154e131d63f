// Command synthimagenet generates a synthetic ImageNet-shaped ImageFolder tree
// of photo-like JPEGs, for benchmarking the data-preparation pipeline:
//
//	<out>/n00000000/n00000000_0.JPEG ... <out>/n00000999/n00000999_99.JPEG
//
// Each image is a random crop (35–100% of the area, aspect near width/height)
// of one of a few real source photos (by default the ones shipped by Debian's
// darknet package), bilinearly resized to -width×-height, randomly flipped,
// with a small random per-channel gain, brightness offset and per-pixel noise,
// so files have ImageNet-like entropy and no two are identical. If no photo
// matches -photos, procedural content (gradients, ellipses, noise) is used.
//
// Image (class c, index i) depends only on (-seed, c, i), not on -workers.
// Existing files are skipped, so a tree can be extended by re-running with a
// larger -per-class. Usage:
//
//	go run ./scripts/synthimagenet -out /work/synth/in10k -classes 1000 -per-class 10
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	out                    string
	classes, perClass      int
	width, height, quality int
	seed                   uint64
	workers                int
	photos                 []*image.RGBA
}

func main() {
	var (
		out      = flag.String("out", "", "output directory (required)")
		classes  = flag.Int("classes", 1000, "number of class folders")
		perClass = flag.Int("per-class", 100, "images per class")
		width    = flag.Int("width", 500, "image width")
		height   = flag.Int("height", 375, "image height")
		quality  = flag.Int("quality", 90, "JPEG quality (1-100)")
		seed     = flag.Uint64("seed", 1, "random seed")
		workers  = flag.Int("workers", runtime.NumCPU(), "parallel workers")
		photos   = flag.String("photos", "/usr/share/darknet/data/*.jpg", "glob of source photos")
	)
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "synthimagenet: -out is required")
		flag.Usage()
		os.Exit(2)
	}
	if *classes < 1 || *perClass < 1 || *width < 1 || *height < 1 || *quality < 1 || *quality > 100 {
		fmt.Fprintln(os.Stderr, "synthimagenet: -classes, -per-class, -width, -height must be positive and -quality in 1..100")
		os.Exit(2)
	}
	if *workers < 1 {
		*workers = 1
	}
	cfg := &config{
		out: *out, classes: *classes, perClass: *perClass,
		width: *width, height: *height, quality: *quality,
		seed: *seed, workers: *workers,
	}
	cfg.photos = loadPhotos(*photos)
	if len(cfg.photos) == 0 {
		fmt.Fprintf(os.Stderr, "synthimagenet: warning: no decodable photos match %q; using procedural content (less photo-like)\n", *photos)
	} else {
		fmt.Fprintf(os.Stderr, "synthimagenet: %d source photos from %s\n", len(cfg.photos), *photos)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "synthimagenet:", err)
		os.Exit(1)
	}
}

func loadPhotos(glob string) []*image.RGBA {
	paths, err := filepath.Glob(glob)
	if err != nil {
		fmt.Fprintf(os.Stderr, "synthimagenet: warning: bad -photos glob: %v\n", err)
		return nil
	}
	var imgs []*image.RGBA
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "synthimagenet: warning: %v\n", err)
			continue
		}
		src, err := jpeg.Decode(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "synthimagenet: warning: decode %s: %v\n", p, err)
			continue
		}
		b := src.Bounds()
		if b.Dx() < 2 || b.Dy() < 2 {
			continue
		}
		rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Bounds(), src, b.Min, draw.Src)
		imgs = append(imgs, rgba)
	}
	return imgs
}

func className(c int) string { return fmt.Sprintf("n%08d", c) }

func run(cfg *config) error {
	for c := 0; c < cfg.classes; c++ {
		if err := os.MkdirAll(filepath.Join(cfg.out, className(c)), 0o755); err != nil {
			return err
		}
	}
	total := int64(cfg.classes) * int64(cfg.perClass)
	var (
		done, written, skipped  atomic.Int64
		writtenBytes, skipBytes atomic.Int64
		firstErr                error
		errOnce                 sync.Once
		failed                  atomic.Bool
	)
	jobs := make(chan int64, 256)
	var wg sync.WaitGroup
	for w := 0; w < cfg.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := newGenerator(cfg)
			for j := range jobs {
				if failed.Load() {
					continue
				}
				c, i := int(j/int64(cfg.perClass)), int(j%int64(cfg.perClass))
				dir := filepath.Join(cfg.out, className(c))
				name := filepath.Join(dir, fmt.Sprintf("%s_%d.JPEG", className(c), i))
				if st, err := os.Stat(name); err == nil {
					skipped.Add(1)
					skipBytes.Add(st.Size())
					done.Add(1)
					continue
				}
				n, err := g.write(name, c, i)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					failed.Store(true)
					continue
				}
				written.Add(1)
				writtenBytes.Add(n)
				done.Add(1)
			}
		}()
	}

	start := time.Now()
	stop := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				el := time.Since(start).Seconds()
				fmt.Fprintf(os.Stderr, "%d/%d images, %.1f images/s (%d written, %d skipped)\n",
					done.Load(), total, float64(written.Load())/el, written.Load(), skipped.Load())
			}
		}
	}()

	for j := int64(0); j < total; j++ {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	close(stop)
	<-progressDone
	if firstErr != nil {
		return firstErr
	}
	el := time.Since(start).Seconds()
	nw, nb := written.Load(), writtenBytes.Load()
	ns, sb := skipped.Load(), skipBytes.Load()
	fmt.Fprintf(os.Stderr, "wrote %d images in %.1fs (%.1f images/s), %d bytes, mean %.1f KB; skipped %d existing (%d bytes)\n",
		nw, el, float64(nw)/el, nb, meanKB(nb, nw), ns, sb)
	fmt.Fprintf(os.Stderr, "tree %s: %d images, %d bytes (%.2f GB), mean %.1f KB\n",
		cfg.out, nw+ns, nb+sb, float64(nb+sb)/1e9, meanKB(nb+sb, nw+ns))
	return nil
}

func meanKB(bytes, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(bytes) / float64(n) / 1000
}

// generator holds one worker's reusable buffers.
type generator struct {
	cfg *config
	img *image.RGBA
	buf bytes.Buffer
}

func newGenerator(cfg *config) *generator {
	return &generator{cfg: cfg, img: image.NewRGBA(image.Rect(0, 0, cfg.width, cfg.height))}
}

// write renders image (c, i), encodes it and writes it to name via name.tmp.
func (g *generator) write(name string, c, i int) (int64, error) {
	// The stream depends only on (seed, c, i).
	rng := rand.New(rand.NewPCG(g.cfg.seed^0x9e3779b97f4a7c15, uint64(c)<<32|uint64(uint32(i))))
	if len(g.cfg.photos) > 0 {
		g.renderPhoto(rng)
	} else {
		g.renderProcedural(rng)
	}
	g.buf.Reset()
	if err := jpeg.Encode(&g.buf, g.img, &jpeg.Options{Quality: g.cfg.quality}); err != nil {
		return 0, err
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, g.buf.Bytes(), 0o644); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return int64(g.buf.Len()), nil
}

func clamp8(v float32) uint8 {
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v + 0.5)
}

// colorJitter draws the per-image gain (per channel) and brightness offset.
func colorJitter(rng *rand.Rand) (gain [3]float32, bright float32) {
	for k := range gain {
		gain[k] = float32(0.85 + 0.30*rng.Float64())
	}
	bright = float32(-20 + 40*rng.Float64())
	return
}

// noise returns three values in [-3, 3] from one random word.
func noise(rng *rand.Rand) (float32, float32, float32) {
	r := rng.Uint64()
	return float32(int((r>>0)&0xffff)%7 - 3), float32(int((r>>16)&0xffff)%7 - 3), float32(int((r>>32)&0xffff)%7 - 3)
}

func (g *generator) renderPhoto(rng *rand.Rand) {
	W, H := g.cfg.width, g.cfg.height
	src := g.cfg.photos[rng.IntN(len(g.cfg.photos))]
	sw, sh := src.Rect.Dx(), src.Rect.Dy()

	// Random crop: area 35–100% of the source, aspect (W/H)·[0.85, 1.15].
	target := float64(W) / float64(H)
	var cw, ch float64
	ok := false
	for try := 0; try < 10; try++ {
		area := float64(sw*sh) * (0.35 + 0.65*rng.Float64())
		ar := target * (0.85 + 0.30*rng.Float64())
		cw, ch = math.Sqrt(area*ar), math.Sqrt(area/ar)
		if cw <= float64(sw) && ch <= float64(sh) {
			ok = true
			break
		}
	}
	if !ok { // largest crop with the target aspect
		cw, ch = float64(sw), float64(sw)/target
		if ch > float64(sh) {
			cw, ch = float64(sh)*target, float64(sh)
		}
	}
	x0 := rng.Float64() * (float64(sw) - cw)
	y0 := rng.Float64() * (float64(sh) - ch)
	flip := rng.IntN(2) == 1
	gain, bright := colorJitter(rng)

	sx, sy := cw/float64(W), ch/float64(H)
	// Precompute horizontal taps.
	type tap struct {
		i0, i1 int
		f      float32
	}
	xt := make([]tap, W)
	for x := 0; x < W; x++ {
		i0, i1, f := bilinearTap(x0+(float64(x)+0.5)*sx-0.5, sw)
		xt[x] = tap{i0 * 4, i1 * 4, f}
	}
	dst := g.img
	for y := 0; y < H; y++ {
		j0, j1, wy := bilinearTap(y0+(float64(y)+0.5)*sy-0.5, sh)
		r0 := src.Pix[j0*src.Stride : j0*src.Stride+sw*4]
		r1 := src.Pix[j1*src.Stride : j1*src.Stride+sw*4]
		drow := dst.Pix[y*dst.Stride : y*dst.Stride+W*4]
		for x := 0; x < W; x++ {
			t := xt[x]
			ox := x
			if flip {
				ox = W - 1 - x
			}
			n0, n1, n2 := noise(rng)
			ns := [3]float32{n0, n1, n2}
			d := drow[ox*4 : ox*4+4]
			for k := 0; k < 3; k++ {
				a := float32(r0[t.i0+k]) + (float32(r0[t.i1+k])-float32(r0[t.i0+k]))*t.f
				b := float32(r1[t.i0+k]) + (float32(r1[t.i1+k])-float32(r1[t.i0+k]))*t.f
				v := a + (b-a)*wy
				d[k] = clamp8(v*gain[k] + bright + ns[k])
			}
			d[3] = 255
		}
	}
}

// bilinearTap clamps a source coordinate to [0, n-1] and returns the two
// samples around it and the weight of the second.
func bilinearTap(pos float64, n int) (i0, i1 int, frac float32) {
	pos = min(max(pos, 0), float64(n-1))
	i0 = int(pos)
	return i0, min(i0+1, n-1), float32(pos - float64(i0))
}

// renderProcedural draws smooth random gradients, a few random ellipses and
// noise; used only when no source photos are available.
func (g *generator) renderProcedural(rng *rand.Rand) {
	W, H := g.cfg.width, g.cfg.height
	var base, gx, gy, amp, fx, fy, ph [3]float64
	for k := 0; k < 3; k++ {
		base[k] = 40 + 170*rng.Float64()
		gx[k] = (rng.Float64() - 0.5) * 120 / float64(W)
		gy[k] = (rng.Float64() - 0.5) * 120 / float64(H)
		amp[k] = 10 + 30*rng.Float64()
		fx[k] = (1 + 6*rng.Float64()) * 2 * math.Pi / float64(W)
		fy[k] = (1 + 6*rng.Float64()) * 2 * math.Pi / float64(H)
		ph[k] = 2 * math.Pi * rng.Float64()
	}
	type ellipse struct {
		cx, cy, rx, ry, cos, sin float64
		col                      [3]float64
	}
	es := make([]ellipse, 3+rng.IntN(6))
	for e := range es {
		th := math.Pi * rng.Float64()
		es[e] = ellipse{
			cx: rng.Float64() * float64(W), cy: rng.Float64() * float64(H),
			rx: (0.05 + 0.25*rng.Float64()) * float64(W), ry: (0.05 + 0.25*rng.Float64()) * float64(H),
			cos: math.Cos(th), sin: math.Sin(th),
			col: [3]float64{255 * rng.Float64(), 255 * rng.Float64(), 255 * rng.Float64()},
		}
	}
	gain, bright := colorJitter(rng)
	dst := g.img
	for y := 0; y < H; y++ {
		for x := 0; x < W; x++ {
			var v [3]float64
			for k := 0; k < 3; k++ {
				v[k] = base[k] + gx[k]*float64(x-W/2) + gy[k]*float64(y-H/2) +
					amp[k]*math.Sin(fx[k]*float64(x)+ph[k])*math.Cos(fy[k]*float64(y)+ph[k])
			}
			for _, e := range es {
				dx, dy := float64(x)-e.cx, float64(y)-e.cy
				u, w := (dx*e.cos+dy*e.sin)/e.rx, (-dx*e.sin+dy*e.cos)/e.ry
				if u*u+w*w <= 1 {
					v = e.col
				}
			}
			n0, n1, n2 := noise(rng)
			ns := [3]float32{n0, n1, n2}
			d := dst.Pix[y*dst.Stride+x*4 : y*dst.Stride+x*4+4]
			for k := 0; k < 3; k++ {
				d[k] = clamp8(float32(v[k])*gain[k] + bright + ns[k])
			}
			d[3] = 255
		}
	}
}
