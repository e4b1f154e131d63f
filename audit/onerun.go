package audit

import (
	"fmt"
	"math"

	"dptrain/internal/gauss"
)

// Guesses is the outcome of one guessing game: of Canaries canaries, each
// included in training independently with probability ½, the auditor
// guessed the membership of Guesses of them and got Correct right. (The
// paper's m, r and v; r = k₊ + k₋.)
type Guesses struct {
	Canaries int `json:"m"`
	Guesses  int `json:"guesses"`
	Correct  int `json:"correct"`
}

// Validate reports whether 0 ≤ Correct ≤ Guesses ≤ Canaries and
// Canaries ≥ 1.
func (g Guesses) Validate() error {
	switch {
	case g.Canaries < 1:
		return fmt.Errorf("audit: %d canaries, need at least 1", g.Canaries)
	case g.Guesses < 0 || g.Guesses > g.Canaries:
		return fmt.Errorf("audit: %d guesses for %d canaries, need 0 ≤ guesses ≤ canaries", g.Guesses, g.Canaries)
	case g.Correct < 0 || g.Correct > g.Guesses:
		return fmt.Errorf("audit: %d correct of %d guesses, need 0 ≤ correct ≤ guesses", g.Correct, g.Guesses)
	}
	return nil
}

// EpsTolerance is the absolute accuracy of the ε bounds: each is the
// lower end of a bracket [ε, ε+EpsTolerance] across which the test flips
// from rejecting to not rejecting, so the bound errs on the safe side.
const EpsTolerance = 1e-9

// epsCap bounds the ε searches. The one-run bounds can never certify more
// than about log(m) + log(1/significance); 1e4 is far beyond that for any
// feasible m and keeps e^ε finite in every formula used.
const epsCap = 1e4

func checkLevels(delta, significance float64, zeroDelta bool) error {
	if !(significance > 0 && significance < 1) {
		return fmt.Errorf("audit: significance %v, need 0 < significance < 1", significance)
	}
	if zeroDelta {
		if !(delta >= 0 && delta < 1) {
			return fmt.Errorf("audit: delta %v, need 0 ≤ delta < 1", delta)
		}
	} else if !(delta > 0 && delta < 1) {
		return fmt.Errorf("audit: delta %v, need 0 < delta < 1", delta)
	}
	return nil
}

// OneRunPValue returns the p-value of Steinke, Nasr & Jagielski (2023) for
// the outcome g under the null hypothesis that the mechanism is
// (eps, delta)-DP: the probability, under any (ε, δ)-DP mechanism, of at
// least g.Correct correct guesses, bounded as
//
//	q = e^ε/(1+e^ε), β = P[Bin(r, q) ≥ v],
//	α = max_{i=1..v} P[v−i ≤ Bin(r, q) < v]/i,
//	p = min(β + 2mδα, 1)
//
// with m, r, v = g.Canaries, g.Guesses, g.Correct.
func OneRunPValue(g Guesses, eps, delta float64) (float64, error) {
	if err := g.Validate(); err != nil {
		return 0, err
	}
	if !(eps >= 0) || math.IsInf(eps, 1) {
		return 0, fmt.Errorf("audit: epsilon %v, need 0 ≤ epsilon < ∞", eps)
	}
	if !(delta >= 0 && delta <= 1) {
		return 0, fmt.Errorf("audit: delta %v, need 0 ≤ delta ≤ 1", delta)
	}
	var b binomTerms
	return pValue(&b, g.Canaries, g.Guesses, g.Correct, eps, delta), nil
}

// OneRunEpsilon returns the ε lower bound of Steinke, Nasr & Jagielski
// (2023) for the outcome g: the largest ε ≥ 0 (to EpsTolerance) at which
// OneRunPValue(g, ε, delta) < significance, or 0 if there is none. If the
// mechanism were (ε, delta)-DP for a smaller ε, an outcome this good would
// occur with probability below significance.
//
// The search brackets a sign change of significance − p(ε) by doubling
// from ε = 1 and bisects it, as JAX Privacy's brentq does. β increases in
// ε; the δ-term need not, but p(ε) is increasing wherever the δ-term is
// small against β, which is where the bound is decided for small δ; the
// package tests check monotonicity on a grid.
func OneRunEpsilon(g Guesses, delta, significance float64) (float64, error) {
	if err := g.Validate(); err != nil {
		return 0, err
	}
	if err := checkLevels(delta, significance, true); err != nil {
		return 0, err
	}
	var b binomTerms
	return oneRunEpsilon(&b, 0, g.Canaries, g.Guesses, g.Correct, delta, significance), nil
}

// oneRunEpsilon is OneRunEpsilon for arguments already checked, searching
// only above epsLo: it returns epsLo unless the null is rejected there.
func oneRunEpsilon(b *binomTerms, epsLo float64, m, k, c int, delta, sig float64) float64 {
	if c == 0 {
		return epsLo
	}
	// β alone is a lower bound on p: if it cannot reject, nothing can.
	if pValue(b, m, k, c, epsLo, 0) >= sig {
		return epsLo
	}
	rejects := func(eps float64) bool { return pValue(b, m, k, c, eps, delta) < sig }
	return searchEps(epsLo, rejects)
}

// searchEps returns the largest ε ≥ epsLo, to EpsTolerance, such that
// rejects(ε) holds, for a predicate that holds below some point and fails
// above it; epsLo itself if rejects(epsLo) fails. The bracket grows by
// doubling from max(1, 2·epsLo) and is then bisected.
func searchEps(epsLo float64, rejects func(float64) bool) float64 {
	if !rejects(epsLo) {
		return epsLo
	}
	lo, hi := epsLo, math.Max(1, 2*epsLo)
	for rejects(hi) {
		lo, hi = hi, 2*hi
		if hi > epsCap {
			return epsCap
		}
	}
	for hi-lo > EpsTolerance {
		mid := lo + 0.5*(hi-lo)
		if rejects(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// OneRunEpsilonFDP returns the ε lower bound of Mahloujifar, Melis &
// Chaudhuri (2024) for the outcome g, using the family of Gaussian
// tradeoff curves: for each ε it takes the Gaussian-DP mechanism that is
// exactly (ε, delta)-DP (μ with Φ(−ε/μ+μ/2) − e^ε Φ(−ε/μ−μ/2) = delta),
// bounds the probability of g.Correct or more correct guesses out of
// g.Guesses under that μ-GDP claim, and returns the largest ε (to
// EpsTolerance) at which the claim is rejected at the given significance,
// or 0 if none.
//
// The bound is a statement about μ-GDP mechanisms, a subset of the
// (ε, delta)-DP ones: it lower-bounds ε for a mechanism whose privacy is
// described by a Gaussian tradeoff curve (as DP-SGD's is, approximately),
// and it is then much tighter than OneRunEpsilon. It is not a valid lower
// bound for an arbitrary (ε, δ)-DP mechanism.
func OneRunEpsilonFDP(g Guesses, delta, significance float64) (float64, error) {
	if err := g.Validate(); err != nil {
		return 0, err
	}
	if err := checkLevels(delta, significance, false); err != nil {
		return 0, err
	}
	return oneRunEpsilonFDP(0, g.Canaries, g.Guesses, g.Correct, delta, significance), nil
}

func oneRunEpsilonFDP(epsLo float64, m, k, c int, delta, sig float64) float64 {
	if c == 0 {
		return epsLo
	}
	rejects := func(eps float64) bool {
		return fdpExcess(m, k, c, sig, gaussianMu(eps, delta)) > 0
	}
	return searchEps(epsLo, rejects)
}

// fdpExcess is the test statistic of Mahloujifar et al. (2024) for k
// guesses, c of them correct, among m canaries, against the claim that the
// mechanism is μ-GDP, at significance sig; the claim is rejected when it is
// positive. It is the recursion of the paper's bound for guessing games
// (the form JAX Privacy implements): two masses start at r = sig·c/m and
// h = sig·(k−c)/m; for i = c−1, …, 0 in turn, h is raised to at least
// Φ(Φ⁻¹(r) − μ), the μ-GDP tradeoff curve's counterpart of r, and r grows
// by i/(k−i) times the increase of h, capped at 1. When h no longer grows
// nothing changes any more, so the loop stops. The claim is rejected when
// r + h exceeds k/m.
//
// Larger μ (a weaker claim) makes Φ(Φ⁻¹(r) − μ) smaller, so the masses grow
// less and the statistic falls; the root search in ε (μ grows with ε at
// fixed δ) relies on that, as JAX's does, and the tests check it on a grid.
func fdpExcess(m, k, c int, sig, mu float64) float64 {
	fm := float64(m)
	r := sig * float64(c) / fm
	h := sig * float64(k-c) / fm
	for i := c - 1; i >= 0; i-- {
		hNew := math.Max(h, gdpBlowUpInverse(r, mu))
		if hNew == h {
			break
		}
		r = math.Min(r+float64(i)/float64(k-i)*(hNew-h), 1)
		h = hNew
	}
	return r + h - float64(k)/fm
}

// gdpBlowUpInverse returns Φ(Φ⁻¹(x) − μ).
func gdpBlowUpInverse(x, mu float64) float64 {
	if math.IsInf(mu, 1) {
		if x >= 1 {
			return 1
		}
		return 0
	}
	return gauss.CDF(normQuantile(x) - mu)
}
