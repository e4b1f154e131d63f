package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"dptrain/data"
	"dptrain/featcache"
	"dptrain/internal/par"
	"dptrain/nn"
	"dptrain/tensor"
)

// featureCacheVersion is part of every cache key: bump it when what a
// cache holds for the same inputs changes.
const featureCacheVersion = 1

// features is a run's cached frozen prefix: the suffix model that trains
// on the cached rows, and the caches of the training and test sets.
type features struct {
	cut         int
	rowShape    []int
	suffix      *nn.Model
	train, test *featcache.Cache
	trainRows   cacheRows
	testRows    *cacheRows
}

func (f *features) close() {
	for _, c := range []*featcache.Cache{f.train, f.test} {
		if c != nil {
			c.Close()
		}
	}
}

// cacheRows serves a cache's rows to the data loader: variant v of
// example i, with the variant of each augmentation drawn as the
// transform would draw its flip.
type cacheRows struct {
	c        *featcache.Cache
	n, d     int
	variants int
	tr       data.Transform
	key      data.Key
}

func (r cacheRows) Len() int                    { return r.n }
func (r cacheRows) Label(i int) int             { return int(r.c.Label(i)) }
func (r cacheRows) Shape() (int, int, int)      { return r.d, 1, 1 }
func (r cacheRows) Row(dst []float32, i, v int) { r.c.Row(dst[:r.d], i, v) }
func (r cacheRows) Variant(step int64, i, k int) int {
	if r.variants == 1 {
		return 0
	}
	return r.tr.Variant(r.key, step, i, k)
}

// frozenPrefix returns the number of top-level layers before the first
// one with a trained parameter.
func frozenPrefix(m *nn.Model) int {
	for i, l := range m.Layers {
		for _, p := range l.Params() {
			if !p.Frozen {
				return i
			}
		}
	}
	return len(m.Layers)
}

// prepareFeatures builds (or opens) the caches of the frozen prefix's
// outputs for the training and test sets, before training.
func (r *run) prepareFeatures() error {
	c := &r.cfg
	m := r.model.model
	if r.model.dataNorm != nil {
		return errors.New("feature_cache: not with feature_norm: data (its statistics are computed from the features while training starts)")
	}
	cut := frozenPrefix(m)
	if cut == 0 {
		return fmt.Errorf("feature_cache: the first layer of model %s (%s) is trained: there is no frozen prefix to cache (freeze one with freeze, freeze_layers or train_last_layer_only)", c.Model, m.Layers[0].Describe())
	}
	if cut == len(m.Layers) {
		return fmt.Errorf("feature_cache: every layer of model %s is frozen", c.Model)
	}
	variants := r.data.tr.FixedVariants()
	if variants == 0 {
		return fmt.Errorf("feature_cache: crop %s draws random crops, so the frozen prefix's output differs at every step and cannot be cached; use crop: none, center or center-resized (a flip is fine: both variants are cached), or turn feature_cache off", c.Crop)
	}
	// Extraction runs on a copy of the model, so the training model's
	// layers keep no activations of the big prefix.
	ext, err := nn.NewModel(r.model.cfg)
	if err != nil {
		return err
	}
	for i, p := range ext.Params() {
		copy(p.Value, m.Params()[i].Value)
		p.Frozen = m.Params()[i].Frozen
	}
	prefix, _ := ext.Split(cut, nil)
	ch, h, w := r.data.train.Shape()
	oc, oh, ow := r.data.tr.OutShape(ch, h, w)
	probe := prefix.Forward(tensor.New(1, oc, oh, ow), false)
	rowShape := append([]int(nil), probe.Shape[1:]...)
	f := &features{cut: cut, rowShape: rowShape}
	_, f.suffix = m.Split(cut, rowShape)
	base, err := r.featureKeyBase(prefix, cut)
	if err != nil {
		return err
	}
	// The prefix is frozen: its BatchNorms fold into its convolutions (the
	// same function, one pass less each; the key is of the weights as
	// trained, above).
	if n := nn.FoldBatchNorm(prefix); n > 0 {
		r.logf("feature_cache: %d frozen BatchNorms folded into their convolutions for extraction", n)
	}
	if err := os.MkdirAll(c.FeatureCache, 0o755); err != nil {
		return fmt.Errorf("feature_cache: %w", err)
	}
	open := func(split string, ds data.Dataset, tr data.Transform, v int, digest string) (*featcache.Cache, error) {
		key := featureKey(base, split, digest, tr, v)
		path := filepath.Join(c.FeatureCache, fmt.Sprintf("%s-%s-%s.dpfeat", split, c.Model, key[:16]))
		if featcache.Exists(path, key) {
			r.logf("feature_cache: %s features from %s", split, path)
		} else {
			spec := featcache.Spec{Key: key, N: ds.Len(), Variants: v, Shape: rowShape,
				Meta: map[string]string{"model": c.Model, "split": split, "data": digest, "cut": fmt.Sprint(cut)}}
			if err := r.extractFeatures(path, spec, prefix, ds, tr); err != nil {
				return nil, err
			}
		}
		fc, err := featcache.Open(path, key)
		if err != nil {
			return nil, fmt.Errorf("feature_cache: %w", err)
		}
		return fc, nil
	}
	if f.train, err = open("train", r.data.train, r.data.tr, variants, r.data.digest); err != nil {
		return err
	}
	d := f.train.Spec().Dim()
	f.trainRows = cacheRows{c: f.train, n: r.data.train.Len(), d: d, variants: variants, tr: r.data.tr, key: r.dataKey}
	if r.data.test != nil {
		digest, err := data.Digest(r.data.test)
		if err != nil {
			f.close()
			return fmt.Errorf("test_data %s: %w", c.TestData, err)
		}
		if f.test, err = open("test", r.data.test, r.data.tr.Eval(), 1, digest); err != nil {
			f.close()
			return err
		}
		f.testRows = &cacheRows{c: f.test, n: r.data.test.Len(), d: d, variants: 1}
	}
	r.features = f
	r.logf("feature_cache: training %d of %d top-level layers on cached %v features (%d variants per image)", len(m.Layers)-cut, len(m.Layers), rowShape, variants)
	return nil
}

// featureKeyBase hashes what the prefix computes: the model, the cut and
// every value of the prefix's parameters.
func (r *run) featureKeyBase(prefix *nn.Model, cut int) ([]byte, error) {
	h := sha256.New()
	desc, err := json.Marshal(struct {
		Version int            `json:"version"`
		Model   nn.ModelConfig `json:"model"`
		Cut     int            `json:"cut"`
	}{featureCacheVersion, withoutSeed(r.model.cfg), cut})
	if err != nil {
		return nil, err
	}
	h.Write(desc)
	var b [4]byte
	for _, p := range prefix.Params() {
		fmt.Fprintf(h, "\n%s %v\n", p.Name, p.Shape)
		for _, v := range p.Value {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	return h.Sum(nil), nil
}

// featureKey keys one split's cache: the prefix, the data's digest, the
// transform and the number of variants.
func featureKey(base []byte, split, digest string, tr data.Transform, variants int) string {
	h := sha256.New()
	h.Write(base)
	t, _ := json.Marshal(tr)
	fmt.Fprintf(h, "\n%s\n%s\n%s\n%d\n", split, digest, t, variants)
	return hex.EncodeToString(h.Sum(nil))
}

// extractRows is the number of rows per forward pass of the prefix.
const extractRows = 32

// extractFeatures computes the prefix's outputs of every variant of every
// image of ds into a cache at path, with progress and an ETA on the log.
func (r *run) extractFeatures(path string, spec featcache.Spec, prefix *nn.Model, ds data.Dataset, tr data.Transform) error {
	ch, h, w := ds.Shape()
	oc, oh, ow := tr.OutShape(ch, h, w)
	size, d, v := oc*oh*ow, spec.Dim(), spec.Variants
	in := make([]float32, extractRows*size)
	imgs := make([][]uint8, extractRows)
	for i := range imgs {
		imgs[i] = make([]uint8, ch*h*w)
	}
	var start time.Time
	started, resumed, lastDone := false, 0, 0
	r.logf("feature_cache: computing %s features of %d images × %d variants with %d frozen layers into %s", spec.Meta["split"], spec.N, v, len(prefix.Layers), path)
	fill := func(lo, hi int, feats []float32, labels []int32) error {
		if !started { // the progress calls so far were for resumed chunks
			started, resumed, start = true, lastDone, time.Now()
			if resumed > 0 {
				r.logf("feature_cache: resuming: %d of %d images already done", resumed, spec.N)
			}
		}
		rows := (hi - lo) * v
		for r0 := 0; r0 < rows; r0 += extractRows {
			n := min(extractRows, rows-r0)
			var mu sync.Mutex
			var firstErr error
			par.For(n, 1, func(a, b int) {
				for j := a; j < b; j++ {
					row := r0 + j
					i := lo + row/v
					err := ds.Image(i, imgs[j])
					if err == nil {
						err = tr.ApplyVariant(in[j*size:(j+1)*size], imgs[j], ch, h, w, row%v)
					}
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = fmt.Errorf("example %d: %w", i, err)
						}
						mu.Unlock()
					}
				}
			})
			if firstErr != nil {
				return firstErr
			}
			y := prefix.Forward(tensor.FromData(in[:n*size], n, oc, oh, ow), false)
			copy(feats[r0*d:(r0+n)*d], y.Data[:n*d])
		}
		for i := lo; i < hi; i++ {
			labels[i-lo] = int32(ds.Label(i))
		}
		return nil
	}
	progress := func(done, total int) {
		lastDone = done
		if !started {
			return
		}
		el := time.Since(start).Seconds()
		rate := float64(done-resumed) / el
		eta := time.Duration(float64(total-done)/rate) * time.Second
		r.logf("feature_cache: %s %d/%d images (%.1f%%), %.1f images/s, %s elapsed, ETA %s", spec.Meta["split"], done, total, 100*float64(done)/float64(total), rate,
			time.Duration(el)*time.Second, eta.Round(time.Second))
	}
	chunk := max(256/v, 64)
	if err := featcache.Build(path, spec, featcache.BuildOptions{ChunkSize: chunk, Progress: progress}, fill); err != nil {
		return fmt.Errorf("feature_cache: %w", err)
	}
	if started {
		r.logf("feature_cache: %s features done in %s", spec.Meta["split"], time.Since(start).Round(time.Second))
	}
	return nil
}

// withoutSeed drops the initialisation seed from a model configuration:
// the prefix's weights are hashed themselves.
func withoutSeed(c nn.ModelConfig) nn.ModelConfig {
	c.Seed = 0
	return c
}
