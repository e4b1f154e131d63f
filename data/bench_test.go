package data

import (
	"archive/tar"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"dptrain/internal/mnistdata"
)

// Benchmarks report images/s on one worker goroutine (per core). Inputs:
// real MNIST (idx), the CIFAR-10 JPEG test set (10,000 images: tar, the
// same files extracted to a directory, their pixels as a CIFAR binary file
// and as prepared shards), and synthetic 500×375 JPEGs for the
// ImageNet-sized prepare path.

var (
	benchOnce sync.Once
	benchDir  string
	benchErr  error
)

// benchFixtures builds (once per process) the CIFAR-derived inputs.
func benchFixtures(b *testing.B) string {
	tarPath := cifarTar(b, "test")
	benchOnce.Do(func() {
		benchDir, benchErr = os.MkdirTemp("", "dptrain-data-bench")
		if benchErr != nil {
			return
		}
		// Directory copy of the tar.
		f, _ := os.Open(tarPath)
		defer f.Close()
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				benchErr = err
				return
			}
			p := filepath.Join(benchDir, "dir", cleanMember(h.Name))
			if h.Typeflag == tar.TypeDir {
				os.MkdirAll(p, 0o755)
				continue
			}
			body, _ := io.ReadAll(tr)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, body, 0o644)
		}
		ds, err := OpenImageFolder(tarPath, OpenOptions{})
		if err != nil {
			benchErr = err
			return
		}
		m := ds.(*memDataset)
		labels := make([]int, m.Len())
		for i := range labels {
			labels[i] = m.Label(i)
		}
		os.MkdirAll(filepath.Join(benchDir, "bin"), 0o755)
		benchErr = os.WriteFile(filepath.Join(benchDir, "bin", "test_batch.bin"), encodeCIFAR(labels, m.pix, CIFAR10Format), 0o644)
		if benchErr == nil {
			_, benchErr = Prepare(PrepareOptions{Src: tarPath, Out: filepath.Join(benchDir, "prepared")})
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchDir
}

func reportImages(b *testing.B, perOp int) {
	b.ReportMetric(float64(perOp)*float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// openSpecs are the formats, as Open specs, with the split to read.
func openSpecs(b *testing.B) map[string][2]string {
	dir := benchFixtures(b)
	specs := map[string][2]string{
		"cifar-binary":    {"cifar10:" + filepath.Join(dir, "bin"), "test"},
		"imagefolder-dir": {"imagefolder:" + filepath.Join(dir, "dir"), ""},
		"imagefolder-tar": {"imagefolder:" + cifarTar(b, "test"), ""},
		"prepared":        {"prepared:" + filepath.Join(dir, "prepared"), ""},
	}
	if m, err := mnistdata.Dir(); err == nil {
		specs["idx-mnist"] = [2]string{"mnist:" + m, "train"}
	}
	return specs
}

var benchFormats = []string{"idx-mnist", "cifar-binary", "imagefolder-dir", "imagefolder-tar", "prepared"}

// BenchmarkOpen: reading (and, for ImageFolder, decoding) a whole dataset
// on one worker.
func BenchmarkOpen(b *testing.B) {
	specs := openSpecs(b)
	for _, name := range benchFormats {
		spec, ok := specs[name]
		if !ok {
			continue
		}
		for _, verify := range []bool{true, false} {
			if !verify && name != "prepared" {
				continue
			}
			sub := name
			if name == "prepared" && !verify {
				sub = "prepared-noverify"
			}
			b.Run(sub, func(b *testing.B) {
				var n int
				for b.Loop() {
					ds, err := Open(spec[0], spec[1], OpenOptions{Workers: 1, NoVerify: !verify})
					if err != nil {
						b.Fatal(err)
					}
					n = ds.Len()
					ds.Close()
				}
				reportImages(b, n)
			})
		}
	}
}

// BenchmarkLoad: a physical batch of 256 random examples through the
// Loader on one worker, without and with augmentation (CIFAR/MNIST-style
// random crop with padding 4 and flip; normalisation in both).
func BenchmarkLoad(b *testing.B) {
	specs := openSpecs(b)
	for _, name := range benchFormats {
		spec, ok := specs[name]
		if !ok {
			continue
		}
		ds, err := Open(spec[0], spec[1], OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		c, h, w := ds.Shape()
		mean, std := CIFAR10Mean, CIFAR10Std
		if c == 1 {
			mean, std = MNISTMean, MNISTStd
		}
		for _, aug := range []bool{false, true} {
			tr := Transform{Mean: mean, Std: std}
			sub := name + "/plain"
			if aug {
				tr = Transform{Crop: CropRandom, Pad: 4, Height: h, Width: w, Flip: true, Mean: mean, Std: std}
				sub = name + "/augment"
			}
			b.Run(sub, func(b *testing.B) {
				l, err := NewLoader(ds, tr, LoaderOptions{Workers: 1, Physical: 256})
				if err != nil {
					b.Fatal(err)
				}
				r := rand.New(rand.NewPCG(1, 2))
				idx := make([]int, 256)
				var batch Batch
				step := int64(0)
				for b.Loop() {
					for i := range idx {
						idx[i] = r.IntN(ds.Len())
					}
					if err := l.Load(&batch, step, idx); err != nil {
						b.Fatal(err)
					}
					step++
				}
				reportImages(b, len(idx))
			})
		}
		if c, ok := ds.(io.Closer); ok {
			c.Close()
		}
	}
}

// BenchmarkPrepareJPEG500: decoding and resizing 500×375 JPEGs (ImageNet's
// typical size) to 224 (shorter side, centre) into shards, one worker.
func BenchmarkPrepareJPEG500(b *testing.B) {
	root := b.TempDir()
	const n = 32
	for i := range n {
		img := smoothImage(375, 500)
		r := rand.New(rand.NewPCG(uint64(i), 3))
		for k := range img.Pix {
			img.Pix[k] += uint8(r.IntN(16)) // some texture
		}
		writeFile(b, filepath.Join(root, "src", []string{"a", "b"}[i%2], string(rune('a'+i))+".jpg"), jpegBytes(b, img))
	}
	k := 0
	for b.Loop() {
		k++
		if _, err := Prepare(PrepareOptions{Src: filepath.Join(root, "src"), Out: filepath.Join(root, "out", string(rune('a'+k%26)), string(rune('a'+k/26))), ImageSize: 224, Workers: 1}); err != nil {
			b.Fatal(err)
		}
	}
	reportImages(b, n)
}

// BenchmarkLoad224: random-resized crop (ImageNet training) and centre
// crop from 256×256 prepared-size images to 224, one worker.
func BenchmarkLoad224(b *testing.B) {
	ds := synthDataset(64, 3, 256, 256, 10)
	for _, tt := range []struct {
		name string
		tr   Transform
	}{
		{"random-resized-crop", Transform{Crop: CropRandomResized, Height: 224, Width: 224, Flip: true, Mean: ImageNetMean, Std: ImageNetStd}},
		{"centre-crop", Transform{Crop: CropCenter, Height: 224, Width: 224, Mean: ImageNetMean, Std: ImageNetStd}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			l, _ := NewLoader(ds, tt.tr, LoaderOptions{Workers: 1})
			idx := []int{1, 5, 9, 13, 17, 21, 25, 29}
			var batch Batch
			s := int64(0)
			for b.Loop() {
				l.Load(&batch, s, idx)
				s++
			}
			reportImages(b, len(idx))
		})
	}
}

// BenchmarkAugment: one augmentation (random crop with padding 4 and flip,
// normalised) of one MNIST- or CIFAR-sized image by a held augmenter,
// including the per-(step, index, k) reseeding of its generator; and
// "reseed", the reseeding alone.
func BenchmarkAugment(b *testing.B) {
	for _, tt := range []struct {
		name    string
		c, h, w int
	}{{"mnist", 1, 28, 28}, {"cifar", 3, 32, 32}} {
		tr := Transform{Crop: CropRandom, Pad: 4, Height: tt.h, Width: tt.w, Flip: true}
		_, img := testImage(tt.h, tt.w*tt.c, 3)
		a := newAugmenter(tr, KeyFromSeed(1), tt.c, tt.h, tt.w)
		dst := make([]float32, tt.c*tt.h*tt.w)
		b.Run(tt.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				a.apply(dst, img, 7, i, 0)
				i++
			}
		})
	}
	b.Run("reseed", func(b *testing.B) {
		a := newAugmenter(Transform{Flip: true}, KeyFromSeed(1), 1, 2, 2)
		i := 0
		for b.Loop() {
			a.seedFor(7, i, 0)
			i++
		}
	})
}

// BenchmarkDigest: the content digest of a whole opened dataset (Digest),
// as run at every start of training. Prepared sets use their checksums
// verified at open; "prepared-generic" hashes the same examples through
// Image/Label.
func BenchmarkDigest(b *testing.B) {
	specs := openSpecs(b)
	for _, name := range append(benchFormats, "prepared-generic") {
		spec, ok := specs[strings.TrimSuffix(name, "-generic")]
		if !ok {
			continue
		}
		ds, err := Open(spec[0], spec[1], OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		target := ds
		if strings.HasSuffix(name, "-generic") {
			target = struct{ Dataset }{ds} // hides ContentDigest
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Digest(target); err != nil {
					b.Fatal(err)
				}
			}
			reportImages(b, ds.Len())
		})
		if c, ok := ds.(io.Closer); ok {
			c.Close()
		}
	}
}

// BenchmarkPoissonSample: one logical batch at ImageNet scale (N =
// 1,281,167; expected batch 4096 and 65536) by geometric skipping, against
// N Bernoulli draws.
func BenchmarkPoissonSample(b *testing.B) {
	const n = 1281167
	for _, batch := range []int{4096, 65536} {
		q := float64(batch) / n
		b.Run("geometric/B="+itoa(batch), func(b *testing.B) {
			s := PoissonSampler{N: n, Rate: q, Key: KeyFromSeed(1)}
			var idx []int
			step := int64(0)
			for b.Loop() {
				idx = s.Sample(step, idx)
				step++
			}
		})
		b.Run("bernoulli/B="+itoa(batch), func(b *testing.B) {
			var idx []int
			step := uint64(0)
			for b.Loop() {
				r := rand.New(rand.NewPCG(1, step))
				idx = idx[:0]
				for i := range n {
					if r.Float64() < q {
						idx = append(idx, i)
					}
				}
				step++
			}
		})
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var s []byte
	for ; i > 0; i /= 10 {
		s = append([]byte{byte('0' + i%10)}, s...)
	}
	return string(s)
}

// BenchmarkPreparedImage times one record read from a memory-mapped
// prepared set (3×32×32), the fault recovery of Image included.
func BenchmarkPreparedImage(b *testing.B) {
	f := newFolderFixture(b, 32, 32)
	out := filepath.Join(b.TempDir(), "p")
	if _, err := Prepare(PrepareOptions{Src: f.writeTar(b), Out: out}); err != nil {
		b.Fatal(err)
	}
	ds, err := OpenPrepared(out, OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer ds.Close()
	dst := make([]uint8, 3*32*32)
	b.SetBytes(int64(len(dst)))
	for i := 0; b.Loop(); i++ {
		if err := ds.Image(i%ds.Len(), dst); err != nil {
			b.Fatal(err)
		}
	}
}
