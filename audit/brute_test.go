package audit

import (
	"math"
	"math/big"
	"testing"
)

// bigPValue computes the Steinke et al. p-value from exact binomial
// coefficients (big.Int) and 300-bit powers of q = E/(1+E) and 1−q, where
// E = math.Exp(eps) gives the same odds the package uses.
func bigPValue(m, k, c int, eps, delta float64) float64 {
	const prec = 300
	nf := func() *big.Float { return new(big.Float).SetPrec(prec) }
	e := nf().SetFloat64(math.Exp(eps))
	one := nf().SetInt64(1)
	den := nf().Add(one, e)
	q := nf().Quo(e, den)
	p1 := nf().Quo(one, den)
	qpow, ppow := make([]*big.Float, k+1), make([]*big.Float, k+1)
	qpow[0], ppow[0] = nf().Set(one), nf().Set(one)
	for j := 1; j <= k; j++ {
		qpow[j] = nf().Mul(qpow[j-1], q)
		ppow[j] = nf().Mul(ppow[j-1], p1)
	}
	pmf := make([]*big.Float, k+1)
	coef := big.NewInt(1) // C(k, j), updated exactly
	for j := 0; j <= k; j++ {
		v := nf().SetInt(coef)
		v.Mul(v, qpow[j])
		pmf[j] = v.Mul(v, ppow[k-j])
		coef.Mul(coef, big.NewInt(int64(k-j)))
		coef.Quo(coef, big.NewInt(int64(j+1)))
	}
	beta := nf()
	for j := c; j <= k; j++ {
		beta.Add(beta, pmf[j])
	}
	alpha, sum := nf(), nf()
	for i := 1; i <= c; i++ {
		sum.Add(sum, pmf[c-i])
		mean := nf().Quo(sum, nf().SetInt64(int64(i)))
		if mean.Cmp(alpha) > 0 {
			alpha = mean
		}
	}
	d := nf().SetFloat64(2 * float64(m) * delta)
	p := nf().Add(beta, d.Mul(d, alpha))
	if p.Cmp(one) > 0 {
		return 1
	}
	f, _ := p.Float64()
	return f
}

func TestPValueExactSmall(t *testing.T) {
	epss := []float64{0, 0.3, 1, 2.5, 6}
	deltas := []float64{0, 1e-6, 1e-3, 0.02}
	for _, m := range []int{1, 2, 5, 12, 30} {
		for k := 0; k <= m; k++ {
			for c := 0; c <= k; c++ {
				for _, eps := range epss {
					for _, delta := range deltas {
						got, err := OneRunPValue(Guesses{m, k, c}, eps, delta)
						if err != nil {
							t.Fatal(err)
						}
						want := bigPValue(m, k, c, eps, delta)
						if math.Abs(got-want) > 1e-12*want+1e-280 {
							t.Errorf("m=%d r=%d v=%d eps=%v delta=%v: p = %.17g, exact %.17g",
								m, k, c, eps, delta, got, want)
						}
					}
				}
			}
		}
	}
}

func TestPValueExactLarge(t *testing.T) {
	// Spot checks at sizes where the recurrence runs long and terms are
	// cut off, including deep tails.
	cases := []struct {
		m, k, c    int
		eps, delta float64
	}{
		{2000, 1000, 600, 0.3, 1e-5},
		{2000, 1000, 900, 1.5, 1e-5},
		{2000, 1000, 999, 4, 1e-6},
		{2000, 1000, 500, 0, 1e-3},
		{2000, 1000, 700, 2, 0}, // c far below the mean: p ≈ 1
		{2000, 1000, 990, 1, 0}, // c far above the mean: p tiny
		{3000, 1500, 1499, 9, 1e-6},
	}
	for _, tc := range cases {
		got, err := OneRunPValue(Guesses{tc.m, tc.k, tc.c}, tc.eps, tc.delta)
		if err != nil {
			t.Fatal(err)
		}
		want := bigPValue(tc.m, tc.k, tc.c, tc.eps, tc.delta)
		if math.Abs(got-want) > 1e-11*want+1e-280 {
			t.Errorf("%+v: p = %.17g, exact %.17g", tc, got, want)
		}
	}
}

// naivePValue is a plain float64 transcription of the formula, with exact
// binomial coefficients (exact in float64 for k ≤ 30).
func naivePValue(m, k, c int, eps, delta float64, qpow, ppow []float64) float64 {
	q := 1 / (1 + math.Exp(-eps))
	p1 := 1 / (1 + math.Exp(eps))
	qpow[0], ppow[0] = 1, 1
	for j := 1; j <= k; j++ {
		qpow[j] = qpow[j-1] * q
		ppow[j] = ppow[j-1] * p1
	}
	pmf := func(j int) float64 { return binom64[k][j] * qpow[j] * ppow[k-j] }
	beta := 0.0
	for j := c; j <= k; j++ {
		beta += pmf(j)
	}
	alpha, sum := 0.0, 0.0
	for i := 1; i <= c; i++ {
		sum += pmf(c - i)
		alpha = math.Max(alpha, sum/float64(i))
	}
	return math.Min(beta+2*float64(m)*delta*alpha, 1)
}

var binom64 = func() [][]float64 {
	b := make([][]float64, 31)
	for n := range b {
		b[n] = make([]float64, n+1)
		b[n][0], b[n][n] = 1, 1
		for j := 1; j < n; j++ {
			b[n][j] = b[n-1][j-1] + b[n-1][j]
		}
	}
	return b
}()

// TestEpsilonGridScan checks OneRunEpsilon against a scan of the naive
// p-value on a grid of step 1e-3: the bound must lie between the last grid
// point that rejects and the first that does not, and (monotonicity) no
// grid point beyond that, up to ε = 8, may reject again.
func TestEpsilonGridScan(t *testing.T) {
	const h = 1e-3
	qpow, ppow := make([]float64, 31), make([]float64, 31)
	for _, m := range []int{1, 2, 5, 12, 30} {
		for _, sig := range []float64{0.05, 0.005} {
			for _, delta := range []float64{0, 1e-3, 0.02} {
				for k := 1; k <= m; k++ {
					for c := 0; c <= k; c++ {
						got, err := OneRunEpsilon(Guesses{m, k, c}, delta, sig)
						if err != nil {
							t.Fatal(err)
						}
						j := 0
						for ; naivePValue(m, k, c, float64(j)*h, delta, qpow, ppow) < sig; j++ {
						}
						lo, hi := math.Max(float64(j-1)*h, 0), float64(j)*h
						if got < lo-1e-7 || got > hi+1e-7 {
							t.Errorf("m=%d r=%d v=%d sig=%v delta=%v: eps = %.9f, grid says [%.3f, %.3f]",
								m, k, c, sig, delta, got, lo, hi)
						}
						if m != 30 {
							continue
						}
						for e := hi; e < 8; e += 10 * h {
							if naivePValue(m, k, c, e, delta, qpow, ppow) < sig {
								t.Errorf("m=%d r=%d v=%d sig=%v delta=%v: p(%.3f) rejects again above the bound %.6f",
									m, k, c, sig, delta, e, got)
								break
							}
						}
					}
				}
			}
		}
	}
}

// TestFDPEpsilonGridScan checks the f-DP search the same way, against the
// statistic evaluated directly on a grid.
func TestFDPEpsilonGridScan(t *testing.T) {
	const h = 1e-2
	for _, tc := range []struct{ m, k, c int }{
		{30, 30, 30}, {30, 20, 18}, {100, 40, 35}, {1000, 200, 180}, {1000, 1000, 990}, {20000, 406, 379},
	} {
		for _, sig := range []float64{0.05, 1e-4} {
			const delta = 1e-6
			got, err := OneRunEpsilonFDP(Guesses{tc.m, tc.k, tc.c}, delta, sig)
			if err != nil {
				t.Fatal(err)
			}
			rejects := func(e float64) bool { return fdpExcess(tc.m, tc.k, tc.c, sig, gaussianMu(e, delta)) > 0 }
			j := 0
			for ; rejects(float64(j) * h); j++ {
			}
			lo, hi := math.Max(float64(j-1)*h, 0), float64(j)*h
			if got < lo-1e-7 || got > hi+1e-7 {
				t.Errorf("%+v sig=%v: eps = %.9f, grid says [%.2f, %.2f]", tc, sig, got, lo, hi)
			}
			for e := hi; e < 30; e += h {
				if rejects(e) {
					t.Errorf("%+v sig=%v: rejects again at %.2f above the bound %.6f", tc, sig, e, got)
					break
				}
			}
		}
	}
}
