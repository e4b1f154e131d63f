package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"dptrain/data"
	"dptrain/internal/seed"
	"dptrain/nn"
)

// Black-box input canaries: m examples of the training data, chosen at
// random, each given a wrong label drawn uniformly from the other classes,
// are set aside; the members among them train with their wrong label (as
// examples nData … of the training set), the others never. A canary's
// score is minus the final model's loss on it (with its wrong label): an
// adversary who sees only the released model.

// blackCanaries sets the canaries aside: which of the data's n examples
// are canaries, their wrong labels, and the map from training-set index to
// data index.
type blackCanaries struct {
	ds     data.Dataset
	real   []int // training index i < nData → data index
	canary []int // canary k → data index
	label  []int // canary k → its wrong label
}

func newBlackCanaries(ds data.Dataset, m int, runSeed uint64) (*blackCanaries, error) {
	n, k := ds.Len(), ds.NumClasses()
	if k < 2 {
		return nil, fmt.Errorf("audit.kind black: mislabelled canaries need at least 2 classes (the training set has %d)", k)
	}
	if 2*m > n {
		return nil, fmt.Errorf("audit.canaries: %d black-box canaries are set aside from the %d training examples: at most half of them (%d)", m, n, n/2)
	}
	r := rand.New(rand.NewPCG(seed.Derive(runSeed, auditPurpose), 3))
	perm := r.Perm(n)
	b := &blackCanaries{ds: ds, canary: perm[:m], label: make([]int, m)}
	isCanary := make([]bool, n)
	for j, i := range b.canary {
		isCanary[i] = true
		b.label[j] = (ds.Label(i) + 1 + r.IntN(k-1)) % k
	}
	for i := range n {
		if !isCanary[i] {
			b.real = append(b.real, i)
		}
	}
	return b, nil
}

// canarySet is a Dataset of some examples of a dataset under other labels.
type canarySet struct {
	data.Dataset
	index []int // example i → the inner dataset's index
	label []int // example i → its label; nil: the inner's
}

func (s *canarySet) Len() int { return len(s.index) }

func (s *canarySet) Label(i int) int {
	if s.label != nil && s.label[i] >= 0 {
		return s.label[i]
	}
	return s.Dataset.Label(s.index[i])
}

func (s *canarySet) Image(i int, dst []uint8) error {
	if i < 0 || i >= len(s.index) {
		panic(data.UsageError(fmt.Sprintf("canary set: example %d of %d", i, len(s.index))))
	}
	return s.Dataset.Image(s.index[i], dst)
}

// ImageSized and MaxPixels forward the inner set's whole images (a
// variable-size prepared set), so that the audited run crops as a normal
// one does.
func (s *canarySet) ImageSized(i int, dst []uint8) (h, w int, err error) {
	if i < 0 || i >= len(s.index) {
		panic(data.UsageError(fmt.Sprintf("canary set: example %d of %d", i, len(s.index))))
	}
	return data.ImageSizedOf(s.Dataset, s.index[i], dst)
}

func (s *canarySet) MaxPixels() int { return data.MaxPixelsOf(s.Dataset) }

// Close leaves the inner dataset open: the run closes it.
func (s *canarySet) Close() error { return nil }

// trainSet is the training set: the real examples and the member canaries
// with their wrong labels.
func (b *blackCanaries) trainSet(members []int) data.Dataset {
	s := &canarySet{Dataset: b.ds, index: append([]int(nil), b.real...), label: make([]int, len(b.real), len(b.real)+len(members))}
	for i := range s.label {
		s.label[i] = -1
	}
	for _, k := range members {
		s.index = append(s.index, b.canary[k])
		s.label = append(s.label, b.label[k])
	}
	return s
}

// scores returns minus the loss of m (its evaluation weights) on every
// canary under its wrong label.
func (b *blackCanaries) scores(m *nn.Model, tr data.Transform, chunk int, shape []int) ([]float64, error) {
	all := &canarySet{Dataset: b.ds, index: b.canary, label: b.label}
	out := make([]float64, len(b.canary))
	var loss nn.SoftmaxCrossEntropy
	err := data.EvalBatches(all, tr, max(chunk, 1), 0, func(bt *data.Batch) error {
		n := bt.N * bt.K
		if n == 0 {
			return nil
		}
		for i, l := range loss.Forward(m.Forward(batchTensor(bt, shape), false), bt.Labels[:n]) {
			out[bt.Indices[i/bt.K]] -= float64(l) / float64(bt.K)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: scoring the canaries: %w", err)
	}
	for k, s := range out {
		if math.IsNaN(s) {
			return nil, fmt.Errorf("audit: the final model's loss on canary %d is NaN", k)
		}
	}
	return out, nil
}
