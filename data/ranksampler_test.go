package data

import (
	"slices"
	"testing"
)

// TestRankSamplerPartsMakeTheSample: the ranks' parts of each logical
// batch are disjoint and together exactly the one-process Poisson sample.
func TestRankSamplerPartsMakeTheSample(t *testing.T) {
	ps := PoissonSampler{N: 1003, Rate: 0.05, Key: KeyFromSeed(11)}
	for _, blocks := range [][][2]int{{{0, 1003}}, {{0, 501}, {501, 1003}}, {{0, 334}, {334, 668}, {668, 1003}}} {
		for step := int64(0); step < 20; step++ {
			want := ps.Sample(step, nil)
			var got []int
			for _, b := range blocks {
				part := RankSampler{Sampler: ps, Lo: b[0], Hi: b[1]}.Sample(step, nil)
				for _, i := range part {
					if i < b[0] || i >= b[1] {
						t.Fatalf("block %v: example %d outside it", b, i)
					}
				}
				got = append(got, part...)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%d blocks, step %d: parts %v, sample %v", len(blocks), step, got, want)
			}
		}
	}
	if e := (RankSampler{Sampler: ps, Lo: 0, Hi: 10}).ExpectedBatch(); e != ps.ExpectedBatch() {
		t.Fatalf("expected batch %g, want the whole batch's %g", e, ps.ExpectedBatch())
	}
}
