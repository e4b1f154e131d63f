package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
)

// Sampler chooses the examples of each logical batch.
type Sampler interface {
	// Sample returns the sorted (Poisson) or shuffled example indices of
	// logical batch step, appended to dst[:0]. It is deterministic in the
	// sampler's key and step.
	Sample(step int64, dst []int) []int
	// ExpectedBatch is the expected logical batch size (B in DP-SGD's
	// normalisation Σ/B).
	ExpectedBatch() float64
	// Describe names the sampling scheme for reports, e.g.
	// "poisson(q=0.004)".
	Describe() string
}

// PoissonSampler includes each of N examples in a logical batch
// independently with probability Rate, so batch sizes vary (they may be 0).
// This is the sampling DP-SGD's privacy accounting assumes. Sample costs
// O(Rate·N) by drawing the gaps between included examples from the
// geometric distribution. The draws of step come from a ChaCha8 generator
// seeded by a PRF of (Key, step) alone, so a batch is unpredictable without
// the key and does not depend on which steps were sampled before.
type PoissonSampler struct {
	N    int
	Rate float64
	Key  Key
}

// Validate reports a misconfigured sampler (a privacy misconfiguration).
func (s PoissonSampler) Validate() error {
	if s.N < 0 {
		return fmt.Errorf("poisson sampler: dataset size %d: expected >= 0", s.N)
	}
	if !(s.Rate >= 0 && s.Rate <= 1) {
		return fmt.Errorf("poisson sampler: sampling rate %v: expected a probability in [0,1]", s.Rate)
	}
	return nil
}

// ExpectedBatch returns Rate·N.
func (s PoissonSampler) ExpectedBatch() float64 { return s.Rate * float64(s.N) }

// Describe names the scheme.
func (s PoissonSampler) Describe() string { return fmt.Sprintf("poisson(q=%g, N=%d)", s.Rate, s.N) }

// Sample returns the indices of logical batch step in increasing order,
// appended to dst[:0]. It panics with a UsageError if the sampler is
// invalid (check Validate first).
func (s PoissonSampler) Sample(step int64, dst []int) []int {
	if err := s.Validate(); err != nil {
		panic(UsageError(err.Error()))
	}
	dst = dst[:0]
	switch {
	case s.Rate == 0 || s.N == 0:
		return dst
	case s.Rate == 1:
		for i := range s.N {
			dst = append(dst, i)
		}
		return dst
	}
	r := newStream(&s.Key, streamPoisson, step, 0, 0)
	lq := math.Log1p(-s.Rate)
	n := float64(s.N)
	for pos := -1.0; ; {
		// Failures before the next inclusion: Geometric(Rate), by inversion
		// with U in (0,1]: P(gap ≥ k) = (1-Rate)^k. U = 1 − F with F the
		// 53-bit float in [0,1) of rand.Rand.Float64.
		u := 1 - float64(r.Uint64()<<11>>11)/(1<<53)
		pos += math.Floor(math.Log(u)/lq) + 1
		if pos >= n {
			return dst
		}
		dst = append(dst, int(pos))
	}
}

// ShuffleSampler returns fixed-size batches from a fresh random permutation
// each epoch (the last partial batch of an epoch is dropped). It is NOT the
// default: DP-SGD accounting for Poisson sampling does not apply to it, and
// reports must say that shuffling was used (see Describe). The permutation
// of epoch e comes from a ChaCha8 generator seeded by a PRF of (Key, e).
type ShuffleSampler struct {
	N         int
	BatchSize int
	Key       Key

	mu    sync.Mutex
	epoch int64
	perm  []int
}

// Validate reports a misconfigured sampler.
func (s *ShuffleSampler) Validate() error {
	if s.BatchSize <= 0 || s.BatchSize > s.N {
		return fmt.Errorf("shuffle sampler: batch size %d: expected 1 to the dataset size %d", s.BatchSize, s.N)
	}
	return nil
}

// ExpectedBatch returns BatchSize.
func (s *ShuffleSampler) ExpectedBatch() float64 { return float64(s.BatchSize) }

// Describe names the scheme, flagging that it is not Poisson sampling.
func (s *ShuffleSampler) Describe() string {
	return fmt.Sprintf("shuffle(batch=%d, N=%d; fixed-size shuffled batches, not Poisson sampling)", s.BatchSize, s.N)
}

// StepsPerEpoch is the number of batches in one epoch.
func (s *ShuffleSampler) StepsPerEpoch() int64 { return int64(s.N / s.BatchSize) }

// Sample returns batch step: batch step mod StepsPerEpoch of the
// permutation of epoch step / StepsPerEpoch. Safe for concurrent use.
func (s *ShuffleSampler) Sample(step int64, dst []int) []int {
	if err := s.Validate(); err != nil {
		panic(UsageError(err.Error()))
	}
	if step < 0 {
		panic(usagef("shuffle sampler: step %d: expected >= 0", step))
	}
	spe := s.StepsPerEpoch()
	epoch, b := step/spe, int(step%spe)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perm == nil || s.epoch != epoch || len(s.perm) != s.N {
		s.perm = grow(s.perm, s.N)
		for i := range s.perm {
			s.perm[i] = i
		}
		r := rand.New(newStream(&s.Key, streamShuffle, epoch, 0, 0))
		r.Shuffle(s.N, func(i, j int) { s.perm[i], s.perm[j] = s.perm[j], s.perm[i] })
		s.epoch = epoch
	}
	return append(dst[:0], s.perm[b*s.BatchSize:(b+1)*s.BatchSize]...)
}
