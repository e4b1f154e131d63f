package data

import "fmt"

// RankSampler is one rank's part of a data-parallel run's sampling: the
// examples of Sampler's logical batch that lie in the rank's block
// [Lo, Hi). Every rank draws the same batch (same key and step) and keeps
// its own examples, so the ranks' parts are disjoint and together exactly
// the batch one process would train on: for Poisson sampling, each
// example is still included independently with probability q.
// ExpectedBatch is Sampler's, the whole batch's (the DP-SGD normaliser).
type RankSampler struct {
	Sampler
	Lo, Hi int
}

// Sample returns the indices of logical batch step in [Lo, Hi), in the
// order Sampler gives them, appended to dst[:0].
func (s RankSampler) Sample(step int64, dst []int) []int {
	if s.Lo < 0 || s.Hi < s.Lo {
		panic(usagef("rank sampler: block [%d, %d)", s.Lo, s.Hi))
	}
	all := s.Sampler.Sample(step, dst)
	kept := all[:0]
	for _, i := range all {
		if i >= s.Lo && i < s.Hi {
			kept = append(kept, i)
		}
	}
	return kept
}

// Describe names the scheme and the block.
func (s RankSampler) Describe() string {
	return fmt.Sprintf("%s, examples [%d, %d) of this rank", s.Sampler.Describe(), s.Lo, s.Hi)
}
