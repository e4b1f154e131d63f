package data

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// synthDataset is a memDataset of n random c×h×w images with labels i%k.
func synthDataset(n, c, h, w, k int) *memDataset {
	_, pix := testImage(n*h, w*c, 77) // any n·c·h·w random bytes
	pix = pix[:n*c*h*w]
	labels := make([]int32, n)
	classes := make([]string, k)
	for i := range labels {
		labels[i] = int32(i % k)
	}
	for i := range classes {
		classes[i] = string(rune('a' + i))
	}
	return &memDataset{classes: classes, c: c, h: h, w: w, pix: pix, labels: labels}
}

var cifarAug = Transform{Crop: CropRandom, Pad: 4, Height: 32, Width: 32, Flip: true, Mean: CIFAR10Mean, Std: CIFAR10Std}

func TestLoaderBatchLayout(t *testing.T) {
	ds := synthDataset(50, 3, 32, 32, 10)
	l, err := NewLoader(ds, cifarAug, LoaderOptions{K: 3, Workers: 3, Key: KeyFromSeed(5)})
	if err != nil {
		t.Fatal(err)
	}
	idx := []int{4, 17, 9, 33}
	var b Batch
	if err := l.Load(&b, 8, idx); err != nil {
		t.Fatal(err)
	}
	size := 3 * 32 * 32
	if b.N != 4 || b.K != 3 || len(b.X) != 12*size || len(b.Labels) != 12 || !slices.Equal(b.Indices, idx) || !b.Last() {
		t.Fatalf("batch N=%d K=%d X=%d labels=%v indices=%v", b.N, b.K, len(b.X), b.Labels, b.Indices)
	}
	img := make([]uint8, size)
	want := make([]float32, size)
	for j, i := range idx {
		ds.Image(i, img)
		for k := range 3 {
			row := j*3 + k
			if b.Labels[row] != ds.Label(i) {
				t.Fatalf("row %d label %d, want %d", row, b.Labels[row], ds.Label(i))
			}
			cifarAug.Apply(want, img, 3, 32, 32, KeyFromSeed(5), 8, i, k)
			if !slices.Equal(b.X[row*size:(row+1)*size], want) {
				t.Fatalf("row %d is not augmentation %d of example %d", row, k, i)
			}
		}
		if slices.Equal(b.X[j*3*size:(j*3+1)*size], b.X[(j*3+1)*size:(j*3+2)*size]) {
			t.Fatalf("example %d: augmentations 0 and 1 are identical", i)
		}
	}
	// Same result with one worker.
	l1, _ := NewLoader(ds, cifarAug, LoaderOptions{K: 3, Workers: 1, Key: KeyFromSeed(5)})
	var b1 Batch
	l1.Load(&b1, 8, idx)
	if !slices.Equal(b.X, b1.X) {
		t.Fatal("result depends on the number of workers")
	}
	if _, err := NewLoader(ds, Transform{Height: 8}, LoaderOptions{}); err == nil {
		t.Fatal("invalid transform accepted")
	}
}

// TestStreamMatchesLoad: the stream's physical batches are the sampler's
// logical batches, split into parts of at most Physical examples, with the
// same pixels as synchronous loads; empty logical batches appear as one
// empty part; buffers are recycled.
func TestStreamMatchesLoad(t *testing.T) {
	ds := synthDataset(300, 3, 8, 8, 7)
	tr := Transform{Crop: CropRandom, Pad: 2, Flip: true}
	opt := LoaderOptions{K: 2, Physical: 16, Workers: 2, Key: KeyFromSeed(9), Prefetch: 2}
	l, _ := NewLoader(ds, tr, opt)
	for _, rate := range []float64{0.1, 0.002} {
		s := PoissonSampler{N: ds.Len(), Rate: rate, Key: KeyFromSeed(4)}
		st := l.Stream(s, 10)
		buffers := map[*Batch]bool{}
		var ref Batch
		empty := 0
		for step := int64(10); step < 30; step++ {
			idx := s.Sample(step, nil)
			parts := max((len(idx)+15)/16, 1)
			for p := range parts {
				b, err := st.Next()
				if err != nil {
					t.Fatal(err)
				}
				buffers[b] = true
				part := idx[min(p*16, len(idx)):min((p+1)*16, len(idx))]
				if b.Step != step || b.Part != p || b.Parts != parts || b.LogicalSize != len(idx) || !slices.Equal(b.Indices, part) {
					t.Fatalf("step %d part %d: got step %d part %d/%d size %d indices %v", step, p, b.Step, b.Part, b.Parts, b.LogicalSize, b.Indices)
				}
				if len(part) == 0 {
					empty++
				}
				l.Load(&ref, step, part)
				if !slices.Equal(ref.X, b.X) || !slices.Equal(ref.Labels, b.Labels) {
					t.Fatalf("step %d part %d: stream and Load differ", step, p)
				}
				st.Release(b)
			}
		}
		st.Close()
		if len(buffers) > opt.Prefetch+1 {
			t.Fatalf("%d distinct buffers, want at most %d", len(buffers), opt.Prefetch+1)
		}
		if rate < 0.01 && empty == 0 {
			t.Fatal("no empty logical batch seen at a rate giving ~0.6 examples")
		}
	}
}

type failingDataset struct{ *memDataset }

func (f failingDataset) Image(i int, dst []uint8) error {
	if i == 3 {
		return errors.New("disk on fire")
	}
	return f.memDataset.Image(i, dst)
}

func TestStreamErrorAndClose(t *testing.T) {
	ds := failingDataset{synthDataset(10, 1, 4, 4, 2)}
	l, _ := NewLoader(ds, Transform{}, LoaderOptions{Physical: 4, Workers: 2})
	st := l.Stream(PoissonSampler{N: 10, Rate: 1}, 0)
	_, err := st.Next()
	if err == nil || !strings.Contains(err.Error(), "step 0: example 3: disk on fire") {
		t.Fatalf("err = %v", err)
	}
	if _, err2 := st.Next(); err2 != err {
		t.Fatal("error not sticky")
	}
	st.Close()
	// Closing a stream whose consumer stopped early ends its goroutine.
	before := runtime.NumGoroutine()
	for range 5 {
		l2, _ := NewLoader(synthDataset(100, 1, 4, 4, 2), Transform{}, LoaderOptions{Physical: 4})
		st := l2.Stream(PoissonSampler{N: 100, Rate: 0.5}, 0)
		st.Next()
		st.Close()
	}
	// Close waits for the producer, which may still be returning: poll
	// (on any machine load) rather than sleep a fixed time.
	after := runtime.NumGoroutine()
	for deadline := time.Now().Add(10 * time.Second); after > before+1 && time.Now().Before(deadline); after = runtime.NumGoroutine() {
		time.Sleep(time.Millisecond)
	}
	if after > before+1 {
		t.Fatalf("goroutines %d → %d after closing streams", before, after)
	}
}

func TestEvalBatches(t *testing.T) {
	ds := synthDataset(23, 3, 10, 10, 4)
	tr := Transform{Crop: CropRandom, Pad: 2, Height: 8, Width: 8, Flip: true}
	var seen []int
	img := make([]uint8, 300)
	want := make([]float32, 3*64)
	err := EvalBatches(ds, tr, 5, 2, func(b *Batch) error {
		if b.K != 1 || b.N > 5 || b.H != 8 {
			t.Fatalf("batch %+v", b)
		}
		for j, i := range b.Indices {
			ds.Image(i, img)
			(Transform{Crop: CropCenter, Height: 8, Width: 8}).Apply(want, img, 3, 10, 10, Key{}, 0, 0, 0)
			if !slices.Equal(b.X[j*192:(j+1)*192], want) || b.Labels[j] != ds.Label(i) {
				t.Fatalf("example %d is not its centre crop", i)
			}
		}
		seen = append(seen, b.Indices...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range seen {
		if i != v {
			t.Fatalf("eval order %v", seen)
		}
	}
	if len(seen) != 23 {
		t.Fatalf("saw %d examples", len(seen))
	}
}

// TestStreamKeepsUp: with compute (simulated) slower than loading, Next
// returns without waiting once the pipeline is warm.
func TestStreamKeepsUp(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	ds := synthDataset(2000, 3, 32, 32, 10)
	l, _ := NewLoader(ds, cifarAug, LoaderOptions{Physical: 64, Workers: 1})
	st := l.Stream(PoissonSampler{N: 2000, Rate: 0.032}, 0)
	defer st.Close()
	b, _ := st.Next()
	st.Release(b)
	w0, _ := st.Wait()
	const compute = 5 * time.Millisecond // ~64 32×32 images take ~1 ms to load
	for range 40 {
		time.Sleep(compute)
		b, err := st.Next()
		if err != nil {
			t.Fatal(err)
		}
		st.Release(b)
	}
	w, n := st.Wait()
	if per := (w - w0) / time.Duration(n-1); per > compute/10 {
		t.Errorf("Next waited %v per batch on a warm pipeline (compute %v)", per, compute)
	}
}
