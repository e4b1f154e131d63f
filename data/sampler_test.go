package data

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestPoissonSamplerBasics(t *testing.T) {
	s := PoissonSampler{N: 1000, Rate: 0.05, Key: KeyFromSeed(7)}
	a := s.Sample(3, nil)
	b := s.Sample(3, make([]int, 0, 5))
	if !slices.Equal(a, b) {
		t.Fatal("same (key, step) gave different batches")
	}
	if slices.Equal(a, s.Sample(4, nil)) || slices.Equal(a, PoissonSampler{N: 1000, Rate: 0.05, Key: KeyFromSeed(8)}.Sample(3, nil)) {
		t.Fatal("different step or key gave the same batch")
	}
	for step := range int64(200) {
		idx := s.Sample(step, a)
		for k, i := range idx {
			if i < 0 || i >= s.N || k > 0 && idx[k-1] >= i {
				t.Fatalf("step %d: indices not sorted, unique, in range: %v", step, idx)
			}
		}
	}
	if got := (PoissonSampler{N: 5, Rate: 1}).Sample(0, nil); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("rate 1: %v", got)
	}
	if got := (PoissonSampler{N: 5, Rate: 0}).Sample(0, nil); len(got) != 0 {
		t.Fatalf("rate 0: %v", got)
	}
	if got := (PoissonSampler{N: 0, Rate: 0.5}).Sample(0, nil); len(got) != 0 {
		t.Fatalf("N 0: %v", got)
	}
	for _, bad := range []PoissonSampler{{N: 10, Rate: -0.1}, {N: 10, Rate: 1.5}, {N: 10, Rate: math.NaN()}, {N: -1, Rate: 0.1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
		func() {
			defer func() {
				if _, ok := recover().(UsageError); !ok {
					t.Errorf("%+v: Sample did not panic with a UsageError", bad)
				}
			}()
			bad.Sample(0, nil)
		}()
	}
	if !strings.Contains(s.Describe(), "poisson") || s.ExpectedBatch() != 50 {
		t.Fatal(s.Describe(), s.ExpectedBatch())
	}
}

// TestPoissonSamplerMoments: batch sizes have mean qN and variance
// qN(1−q), and consecutive steps are uncorrelated.
func TestPoissonSamplerMoments(t *testing.T) {
	for _, tt := range []struct {
		n    int
		q    float64
		reps int
	}{{10000, 0.01, 4000}, {1000, 0.5, 4000}, {1281167, 0.0005, 500}} {
		s := PoissonSampler{N: tt.n, Rate: tt.q, Key: KeyFromSeed(11)}
		sizes := make([]float64, tt.reps)
		var idx []int
		for step := range tt.reps {
			idx = s.Sample(int64(step), idx)
			sizes[step] = float64(len(idx))
		}
		mean, variance := meanVar(sizes)
		mu, sigma2 := tt.q*float64(tt.n), tt.q*(1-tt.q)*float64(tt.n)
		T := float64(tt.reps)
		if z := (mean - mu) / math.Sqrt(sigma2/T); math.Abs(z) > 5 {
			t.Errorf("N=%d q=%v: mean %.3f vs qN %.3f (z=%.1f)", tt.n, tt.q, mean, mu, z)
		}
		if z := (variance - sigma2) / (sigma2 * math.Sqrt(2/T)); math.Abs(z) > 5 {
			t.Errorf("N=%d q=%v: variance %.3f vs qN(1-q) %.3f (z=%.1f)", tt.n, tt.q, variance, sigma2, z)
		}
		var cov float64
		for i := 1; i < len(sizes); i++ {
			cov += (sizes[i] - mean) * (sizes[i-1] - mean)
		}
		if rho := cov / (T - 1) / variance; math.Abs(rho)*math.Sqrt(T) > 5 {
			t.Errorf("N=%d q=%v: lag-1 correlation of sizes %.3f", tt.n, tt.q, rho)
		}
	}
}

func meanVar(x []float64) (float64, float64) {
	var s float64
	for _, v := range x {
		s += v
	}
	m := s / float64(len(x))
	var ss float64
	for _, v := range x {
		ss += (v - m) * (v - m)
	}
	return m, ss / float64(len(x)-1)
}

// TestPoissonSamplerIndependence: every index is included with probability
// q (chi-square over indices), pairs at distance 1, 2 and 7 jointly with q²
// (what an off-by-one in the geometric skips would break), and the size
// distribution matches Binomial(N, q).
func TestPoissonSamplerIndependence(t *testing.T) {
	const n, q, T = 200, 0.3, 6000
	s := PoissonSampler{N: n, Rate: q, Key: KeyFromSeed(3)}
	counts := make([]float64, n)
	lags := []int{1, 2, 7}
	joint := make([]float64, len(lags))
	hist := make([]float64, n+1)
	in := make([]bool, n)
	var idx []int
	for step := range int64(T) {
		idx = s.Sample(step, idx)
		clear(in)
		for _, i := range idx {
			in[i] = true
			counts[i]++
		}
		for k, lag := range lags {
			for i := 0; i+lag < n; i++ {
				if in[i] && in[i+lag] {
					joint[k]++
				}
			}
		}
		hist[len(idx)]++
	}
	var chi2 float64
	for _, c := range counts {
		chi2 += (c - T*q) * (c - T*q) / (T * q * (1 - q))
	}
	if math.Abs(chi2-n) > 5*math.Sqrt(2*n) {
		t.Errorf("per-index inclusion chi-square %.1f with %d degrees of freedom", chi2, n)
	}
	for k, lag := range lags {
		pairs := float64(T * (n - lag))
		p := joint[k] / pairs
		if z := (p - q*q) / math.Sqrt(q*q*(1-q*q)/pairs); math.Abs(z) > 5 {
			t.Errorf("lag %d: joint inclusion %.4f vs q² %.4f (z=%.1f)", lag, p, q*q, z)
		}
	}
	// Binomial(n, q) size distribution, bins with expectation ≥ 5.
	chi2, df := 0.0, -1
	var obsRest, expRest float64
	for k := range n + 1 {
		e := T * math.Exp(lchoose(n, k)+float64(k)*math.Log(q)+float64(n-k)*math.Log1p(-q))
		if e < 5 {
			obsRest += hist[k]
			expRest += e
			continue
		}
		chi2 += (hist[k] - e) * (hist[k] - e) / e
		df++
	}
	if expRest >= 5 {
		chi2 += (obsRest - expRest) * (obsRest - expRest) / expRest
		df++
	}
	if chi2 > float64(df)+5*math.Sqrt(2*float64(df)) {
		t.Errorf("batch-size distribution chi-square %.1f with %d degrees of freedom", chi2, df)
	}
}

func lchoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

func TestShuffleSampler(t *testing.T) {
	s := &ShuffleSampler{N: 103, BatchSize: 10, Key: KeyFromSeed(1)}
	if s.StepsPerEpoch() != 10 || !strings.Contains(s.Describe(), "not Poisson") {
		t.Fatal(s.StepsPerEpoch(), s.Describe())
	}
	for epoch := range int64(3) {
		seen := map[int]bool{}
		for b := range s.StepsPerEpoch() {
			idx := s.Sample(epoch*10+b, nil)
			if len(idx) != 10 {
				t.Fatalf("batch of %d", len(idx))
			}
			for _, i := range idx {
				if seen[i] || i < 0 || i >= 103 {
					t.Fatalf("epoch %d: index %d repeated or out of range", epoch, i)
				}
				seen[i] = true
			}
		}
	}
	// Deterministic whatever the call order; epochs differ.
	a := s.Sample(25, nil)
	s.Sample(3, nil)
	if !slices.Equal(a, (&ShuffleSampler{N: 103, BatchSize: 10, Key: KeyFromSeed(1)}).Sample(25, nil)) || slices.Equal(a, s.Sample(15, nil)) {
		t.Fatal("shuffle sampler not deterministic per (key, step) or epochs repeat")
	}
	if (&ShuffleSampler{N: 5, BatchSize: 6}).Validate() == nil {
		t.Fatal("batch larger than N accepted")
	}
}
