package data

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Batch is one physical batch: K augmentations of each of N examples, as
// float32 NCHW. The augmentations of example j are rows j·K … j·K+K−1.
type Batch struct {
	X       []float32 // (N·K)×C×H×W
	Labels  []int     // len N·K: the label of each row
	Indices []int     // len N: the dataset index of each example
	N, K    int
	C, H, W int

	// Position in the logical batch (set by Stream; zero for Load).
	Step        int64 // logical batch (training step)
	Part, Parts int   // this is physical batch Part of Parts (Parts ≥ 1)
	LogicalSize int   // examples in the whole logical batch (may be 0)
}

// Last reports whether b is the last physical batch of its logical batch.
func (b *Batch) Last() bool { return b.Part == b.Parts-1 }

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	K        int // augmentations per example (augmentation multiplicity); default 1
	Physical int // maximum examples per physical batch; default 256
	Workers  int // transform goroutines; default GOMAXPROCS
	Prefetch int // physical batches prepared ahead by a Stream; default 2
	// Key keys the augmentation generators: augmentation k of example i at
	// step s is drawn from ChaCha8 seeded by a PRF of (Key, s, i, k), so
	// batches do not depend on Workers or on scheduling. Use NewSecretKey
	// (secure mode) or KeyFromSeed (reproducible runs).
	Key Key
}

// Loader turns dataset examples into transformed float32 batches (or, made
// by NewRowLoader, a RowSource's rows into batches).
type Loader struct {
	ds         Dataset
	rows       RowSource // instead of ds and tr
	n          int       // examples
	tr         Transform
	opt        LoaderOptions
	c, h, w    int
	oc, oh, ow int
	sized      SizedImager // ds's whole images for the resized crops, else nil
}

// SizedImager is implemented by datasets whose stored images may be larger
// than Shape (a prepared set with a short side, see Manifest): ImageSized
// copies example i whole into dst and returns its size, MaxPixels bounds
// its c·h·w. The Loader's resized crops (random-resized, centre-resized)
// read whole images through it; everything else sees Image's Shape-sized
// centre.
type SizedImager interface {
	ImageSized(i int, dst []uint8) (h, w int, err error)
	MaxPixels() int
}

// ImageSizedOf copies example i of ds whole: through ImageSized when ds is
// a SizedImager, else Image at Shape's size. A Dataset wrapper forwards
// SizedImager with it (an embedded Dataset does not promote it).
func ImageSizedOf(ds Dataset, i int, dst []uint8) (h, w int, err error) {
	if si, ok := ds.(SizedImager); ok {
		return si.ImageSized(i, dst)
	}
	_, h, w = ds.Shape()
	return h, w, ds.Image(i, dst)
}

// MaxPixelsOf is ds's MaxPixels when it is a SizedImager, else c·h·w.
func MaxPixelsOf(ds Dataset) int {
	if si, ok := ds.(SizedImager); ok {
		return si.MaxPixels()
	}
	c, h, w := ds.Shape()
	return c * h * w
}

// NewRowLoader returns a Loader whose batches hold src's rows: augmentation
// k of example i at step s is row src.Variant(s, i, k) of i. Its batches,
// streams and physical splitting are those of NewLoader's.
func NewRowLoader(src RowSource, opt LoaderOptions) (*Loader, error) {
	l, err := newLoader(opt)
	if err != nil {
		return nil, err
	}
	l.rows, l.n = src, src.Len()
	l.oc, l.oh, l.ow = src.Shape()
	l.c, l.h, l.w = l.oc, l.oh, l.ow
	return l, nil
}

// NewLoader checks the transform against the dataset's shape.
func NewLoader(ds Dataset, tr Transform, opt LoaderOptions) (*Loader, error) {
	l, err := newLoader(opt)
	if err != nil {
		return nil, err
	}
	l.ds, l.tr, l.n = ds, tr, ds.Len()
	l.c, l.h, l.w = ds.Shape()
	if err := tr.Validate(l.c, l.h, l.w); err != nil {
		return nil, err
	}
	l.oc, l.oh, l.ow = tr.OutShape(l.c, l.h, l.w)
	if si, ok := ds.(SizedImager); ok && (tr.Crop == CropRandomResized || tr.Crop == CropCenterResized) {
		l.sized = si
	}
	return l, nil
}

// newLoader checks opt and fills in its defaults.
func newLoader(opt LoaderOptions) (*Loader, error) {
	if opt.K == 0 {
		opt.K = 1
	}
	if opt.Physical == 0 {
		opt.Physical = 256
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.Prefetch <= 0 {
		opt.Prefetch = 2
	}
	if opt.K < 0 || opt.Physical < 0 {
		return nil, fmt.Errorf("loader: augmentation multiplicity %d and physical batch %d: expected > 0", opt.K, opt.Physical)
	}
	if uint64(opt.K) > math.MaxUint32 {
		return nil, fmt.Errorf("loader: augmentation multiplicity %d: expected at most 2^32-1", opt.K)
	}
	return &Loader{opt: opt}, nil
}

// OutShape is the shape of one transformed image.
func (l *Loader) OutShape() (c, h, w int) { return l.oc, l.oh, l.ow }

// Options returns the options in effect (defaults filled in).
func (l *Loader) Options() LoaderOptions { return l.opt }

// workerSet holds per-goroutine transform state.
type workerSet struct {
	augs []*augmenter
}

func (l *Loader) newWorkers() *workerSet {
	if l.rows != nil {
		return &workerSet{}
	}
	ws := &workerSet{augs: make([]*augmenter, l.opt.Workers)}
	for i := range ws.augs {
		ws.augs[i] = newAugmenter(l.tr, l.opt.Key, l.c, l.h, l.w)
		if l.sized != nil {
			ws.augs[i].img = make([]uint8, l.sized.MaxPixels())
		}
	}
	return ws
}

// resize makes b hold n examples, reusing its buffers.
func (l *Loader) resize(b *Batch, n int) {
	k := l.opt.K
	b.N, b.K, b.C, b.H, b.W = n, k, l.oc, l.oh, l.ow
	b.X = grow(b.X, n*k*l.oc*l.oh*l.ow)
	b.Labels = grow(b.Labels, n*k)
	b.Indices = grow(b.Indices, n)
}

// fill loads and transforms the examples indices into b in parallel.
func (l *Loader) fill(ws *workerSet, b *Batch, step int64, indices []int) error {
	l.resize(b, len(indices))
	copy(b.Indices, indices)
	k, size := l.opt.K, l.oc*l.oh*l.ow
	if l.rows != nil {
		for j, idx := range indices {
			label := l.rows.Label(idx)
			for r := range k {
				row := j*k + r
				l.rows.Row(b.X[row*size:(row+1)*size], idx, l.rows.Variant(step, idx, r))
				b.Labels[row] = label
			}
		}
		return nil
	}
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	work := func(a *augmenter) {
		for {
			j := int(next.Add(1) - 1)
			if j >= len(indices) {
				return
			}
			idx := indices[j]
			var err error
			if l.sized != nil {
				// The resized crops see the whole image (any size).
				a.h, a.w, err = l.sized.ImageSized(idx, a.img)
			} else {
				err = l.ds.Image(idx, a.img)
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("example %d: %w", idx, err)
				}
				mu.Unlock()
				return
			}
			label := l.ds.Label(idx)
			for r := range k {
				row := j*k + r
				a.apply(b.X[row*size:(row+1)*size], a.img, step, idx, r)
				b.Labels[row] = label
			}
		}
	}
	nw := min(len(ws.augs), len(indices))
	if nw <= 1 {
		if nw == 1 {
			work(ws.augs[0])
		}
		return firstErr
	}
	var wg sync.WaitGroup
	for _, a := range ws.augs[1:nw] {
		wg.Add(1)
		go func() { defer wg.Done(); work(a) }()
	}
	work(ws.augs[0])
	wg.Wait()
	return firstErr
}

// Load fills dst with the examples indices (any number, one batch) of
// training step step, synchronously. Indices must be in [0, Len).
func (l *Loader) Load(dst *Batch, step int64, indices []int) error {
	for _, i := range indices {
		if i < 0 || i >= l.n {
			panic(usagef("Loader.Load: index %d out of range [0,%d)", i, l.n))
		}
	}
	dst.Step, dst.Part, dst.Parts, dst.LogicalSize = step, 0, 1, len(indices)
	return l.fill(l.newWorkers(), dst, step, indices)
}

// Stream produces the physical batches of logical batches first, first+1, …
// drawn by s, in the background: at most Prefetch batches are prepared
// ahead, in Prefetch+1 recycled buffers. Call Next, use the batch, Release
// it; Close when done.
func (l *Loader) Stream(s Sampler, first int64) *Stream {
	st := &Stream{
		out:  make(chan streamItem, l.opt.Prefetch),
		free: make(chan *Batch, l.opt.Prefetch+1),
		done: make(chan struct{}),
	}
	for range l.opt.Prefetch + 1 {
		st.free <- new(Batch)
	}
	st.wg.Add(1)
	go st.produce(l, s, first)
	return st
}

// Stream is a background producer of physical batches (see Loader.Stream).
type Stream struct {
	out   chan streamItem
	free  chan *Batch
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	err   error
	waits time.Duration
	nexts int
}

type streamItem struct {
	b   *Batch
	err error
}

func (st *Stream) produce(l *Loader, s Sampler, first int64) {
	defer st.wg.Done()
	ws := l.newWorkers()
	var idx []int
	for step := first; ; step++ {
		idx = s.Sample(step, idx)
		for _, i := range idx {
			if i < 0 || i >= l.n {
				st.send(streamItem{err: fmt.Errorf("sampler returned index %d for a dataset of %d examples", i, l.n)})
				return
			}
		}
		parts := max((len(idx)+l.opt.Physical-1)/l.opt.Physical, 1)
		for p := range parts {
			var b *Batch
			select {
			case b = <-st.free:
			case <-st.done:
				return
			}
			part := idx[min(p*l.opt.Physical, len(idx)):min((p+1)*l.opt.Physical, len(idx))]
			b.Step, b.Part, b.Parts, b.LogicalSize = step, p, parts, len(idx)
			if err := l.fill(ws, b, step, part); err != nil {
				st.send(streamItem{err: fmt.Errorf("step %d: %w", step, err)})
				return
			}
			if !st.send(streamItem{b: b}) {
				return
			}
		}
	}
}

func (st *Stream) send(it streamItem) bool {
	select {
	case st.out <- it:
		return true
	case <-st.done:
		return false
	}
}

// Next returns the next physical batch, waiting if it is not ready. After
// an error, Next keeps returning it.
func (st *Stream) Next() (*Batch, error) {
	if st.err != nil {
		return nil, st.err
	}
	t0 := time.Now()
	it := <-st.out
	st.waits += time.Since(t0)
	st.nexts++
	if it.err != nil {
		st.err = it.err
	}
	return it.b, it.err
}

// Release returns b's buffers for reuse; b must not be used afterwards.
func (st *Stream) Release(b *Batch) {
	if b != nil {
		st.free <- b
	}
}

// Wait returns the total time Next spent waiting for data and the number
// of Next calls (a warm pipeline waits ~0).
func (st *Stream) Wait() (time.Duration, int) { return st.waits, st.nexts }

// Close stops the producer and waits for it.
func (st *Stream) Close() {
	st.once.Do(func() {
		close(st.done)
		st.wg.Wait()
	})
}

// EvalBatches walks the whole dataset in order, chunk examples at a time,
// with the evaluation version of tr (tr.Eval(): centre crops, no flip, one
// augmentation), calling fn with each batch (valid during the call only).
func EvalBatches(ds Dataset, tr Transform, chunk, workers int, fn func(*Batch) error) error {
	l, err := NewLoader(ds, tr.Eval(), LoaderOptions{K: 1, Physical: chunk, Workers: workers})
	if err != nil {
		return err
	}
	return l.evalBatches(fn)
}

// EvalRowBatches is EvalBatches over a RowSource's rows (the variant its
// Variant gives augmentation 0 at step 0).
func EvalRowBatches(src RowSource, chunk int, fn func(*Batch) error) error {
	l, err := NewRowLoader(src, LoaderOptions{K: 1, Physical: chunk})
	if err != nil {
		return err
	}
	return l.evalBatches(fn)
}

// evalBatches passes every example once, in index order, in batches of
// the physical size.
func (l *Loader) evalBatches(fn func(*Batch) error) error {
	chunk := l.opt.Physical
	ws := l.newWorkers()
	var b Batch
	idx := make([]int, 0, chunk)
	parts := max((l.n+chunk-1)/chunk, 1)
	for p := range parts {
		idx = idx[:0]
		for i := p * chunk; i < min((p+1)*chunk, l.n); i++ {
			idx = append(idx, i)
		}
		b.Part, b.Parts, b.LogicalSize = p, parts, l.n
		if err := l.fill(ws, &b, 0, idx); err != nil {
			return err
		}
		if err := fn(&b); err != nil {
			return err
		}
	}
	return nil
}
