package audit

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// Options configures EpsilonFromScores.
type Options struct {
	// Delta is the δ of the (ε, δ)-DP claim under test, in (0, 1).
	Delta float64
	// Significance is the family-wise probability, in (0, 1), that the
	// reported bounds exceed the truth; the confidence is 1 − Significance.
	// It is shared over all thresholds tried (Bonferroni).
	Significance float64
}

// Result is the outcome of EpsilonFromScores; dptrain writes it to
// audit.json.
type Result struct {
	// Canaries is m, the number of canaries (in plus out); InCanaries and
	// OutCanaries are the numbers that were and were not trained on.
	Canaries    int `json:"m"`
	InCanaries  int `json:"m_in"`
	OutCanaries int `json:"m_out"`

	Delta        float64 `json:"delta"`
	Significance float64 `json:"significance"`
	Confidence   float64 `json:"confidence"`
	// Thresholds is the number of thresholds on the Pareto frontier, each a
	// hypothesis tested at level Significance/Thresholds.
	Thresholds int `json:"thresholds"`

	// EpsilonOneRun is the lower bound of Steinke, Nasr & Jagielski (2023),
	// Guesses and Correct the guess set that achieved it (guessing "in" for
	// scores ≥ Threshold; Threshold is absent when no guess set rejected
	// ε = 0 or when it is infinite).
	EpsilonOneRun float64  `json:"epsilon_lower_one_run"`
	Guesses       int      `json:"guesses"`
	Correct       int      `json:"correct"`
	Threshold     *float64 `json:"threshold,omitempty"`

	// EpsilonFDP is the Gaussian f-DP lower bound of Mahloujifar, Melis &
	// Chaudhuri (2024), with its own guess set.
	EpsilonFDP   float64  `json:"epsilon_lower_fdp"`
	GuessesFDP   int      `json:"guesses_fdp"`
	CorrectFDP   int      `json:"correct_fdp"`
	ThresholdFDP *float64 `json:"threshold_fdp,omitempty"`
}

// thresholdPoint is one candidate decision rule: guess "in" for every
// score ≥ thr (guess nothing when none is true, thr = +Inf).
type thresholdPoint struct {
	thr       float64
	tp, fp    int // in- and out-canaries guessed "in"
	precLower float64
}

// EpsilonFromScores audits a training run from the attack scores of the
// canaries that were trained on (in) and those that were not (out), higher
// scores meaning "in". It tries the decision rules "guess in for the
// canaries scoring at least t" (one-sided guesses, k₋ = 0) for the
// thresholds t on the Pareto frontier of the ROC curve, corrects the
// significance for their number (Bonferroni), and returns both one-run
// bounds with the guess sets that achieved them. m is len(in) + len(out).
//
// It reproduces JAX Privacy's CanaryScoreAuditor.epsilon_one_run and
// epsilon_one_run_fdp with the default Bonferroni threshold strategy.
// The inputs are not modified. NaN scores are an error.
func EpsilonFromScores(in, out []float64, opts Options) (Result, error) {
	if len(in) == 0 || len(out) == 0 {
		return Result{}, fmt.Errorf("audit: %d in- and %d out-canary scores, need at least one of each", len(in), len(out))
	}
	if err := checkLevels(opts.Delta, opts.Significance, false); err != nil {
		return Result{}, err
	}
	for i, s := range in {
		if math.IsNaN(s) {
			return Result{}, fmt.Errorf("audit: in-canary score %d is NaN", i)
		}
	}
	for i, s := range out {
		if math.IsNaN(s) {
			return Result{}, fmt.Errorf("audit: out-canary score %d is NaN", i)
		}
	}
	pts := frontier(in, out)
	n := len(pts)
	res := Result{
		Canaries:     len(in) + len(out),
		InCanaries:   len(in),
		OutCanaries:  len(out),
		Delta:        opts.Delta,
		Significance: opts.Significance,
		Confidence:   1 - opts.Significance,
		Thresholds:   n,
	}
	sig := opts.Significance / float64(n)
	m := res.Canaries

	var b binomTerms
	for i := range pts {
		p := &pts[i]
		p.precLower = 1 - clopperPearsonUpper(&b, p.fp, p.tp+p.fp, sig)
	}
	// JAX visits thresholds by decreasing Clopper–Pearson lower bound on
	// their precision (at the corrected level) and skips any whose raw
	// precision v/r is no better than q(ε) for the best ε found so far.
	// For the (ε, δ) bound that skip is exact: v ≤ rq means v ≤ ⌊rq⌋, at
	// most the median of Bin(r, q), so β ≥ ½ > sig (sig < ½ as there are at
	// least two thresholds). For the f-DP bound it is a heuristic (a
	// Gaussian claim can be rejected at a precision below q(ε)), so what it
	// skips depends on the order, which is therefore JAX's; skipping only
	// ever lowers the bound, which stays valid. In the package's tests it
	// never changed the result.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, c int) bool { return pts[order[a]].precLower > pts[order[c]].precLower })

	sweep := func(search func(epsLo float64, k, c int) float64) (float64, int) {
		best, bestIdx, bestQ := 0.0, -1, 0.5
		for _, idx := range order {
			p := pts[idx]
			k := p.tp + p.fp
			if k == 0 || float64(p.tp)/float64(k) <= bestQ {
				continue
			}
			if e := search(best, k, p.tp); e > best {
				best, bestIdx = e, idx
				bestQ = 1 / (1 + math.Exp(-best))
			}
		}
		return best, bestIdx
	}
	eps, idx := sweep(func(lo float64, k, c int) float64 {
		return oneRunEpsilon(&b, lo, m, k, c, opts.Delta, sig)
	})
	res.EpsilonOneRun = eps
	res.Guesses, res.Correct, res.Threshold = describe(pts, idx)
	eps, idx = sweep(func(lo float64, k, c int) float64 {
		return oneRunEpsilonFDP(lo, m, k, c, opts.Delta, sig)
	})
	res.EpsilonFDP = eps
	res.GuessesFDP, res.CorrectFDP, res.ThresholdFDP = describe(pts, idx)
	return res, nil
}

func describe(pts []thresholdPoint, idx int) (k, c int, thr *float64) {
	if idx < 0 {
		return 0, 0, nil
	}
	p := pts[idx]
	if !math.IsInf(p.thr, 0) {
		t := p.thr
		thr = &t
	}
	return p.tp + p.fp, p.tp, thr
}

// frontier returns the decision rules on the Pareto frontier, in order of
// increasing threshold. The candidate thresholds are the distinct scores
// and +Inf (guess nothing); for each the point (false negatives, true
// negatives) is formed, and those points are kept that are strict vertices
// of the upper concave hull of the resulting curve. Any other point is
// weakly dominated by a randomised mix of two neighbours, which is what
// JAX Privacy's _pareto_frontier removes (it peels dominated points in
// rounds; the fixed point of that peeling is this hull).
func frontier(in, out []float64) []thresholdPoint {
	ins, outs := slices.Clone(in), slices.Clone(out)
	slices.Sort(ins)
	slices.Sort(outs)
	nIn, nOut := len(ins), len(outs)

	type cand struct {
		thr    float64
		fn, tn int
	}
	cands := make([]cand, 0, nIn+nOut+1)
	i, j := 0, 0
	for i < nIn || j < nOut {
		var t float64
		switch {
		case j >= nOut || (i < nIn && ins[i] <= outs[j]):
			t = ins[i]
		default:
			t = outs[j]
		}
		// i and j count the scores below t.
		cands = append(cands, cand{t, i, j})
		for i < nIn && ins[i] == t {
			i++
		}
		for j < nOut && outs[j] == t {
			j++
		}
	}
	cands = append(cands, cand{math.Inf(1), nIn, nOut})

	// Andrew's monotone chain, upper hull, dropping collinear points. Both
	// coordinates are non-decreasing and their sum strictly increasing.
	hull := make([]int, 0, 64)
	cross := func(a, b, c cand) int64 {
		x1, y1 := int64(b.fn-a.fn), int64(b.tn-a.tn)
		x2, y2 := int64(c.fn-b.fn), int64(c.tn-b.tn)
		return y1*x2 - y2*x1
	}
	for idx := range cands {
		for len(hull) >= 2 && cross(cands[hull[len(hull)-2]], cands[hull[len(hull)-1]], cands[idx]) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, idx)
	}
	pts := make([]thresholdPoint, len(hull))
	for h, idx := range hull {
		c := cands[idx]
		pts[h] = thresholdPoint{thr: c.thr, tp: nIn - c.fn, fp: nOut - c.tn}
	}
	return pts
}

// clopperPearsonUpper returns the one-sided Clopper–Pearson upper
// confidence bound on a success probability after x successes in n trials
// at the given significance: the p with P[Bin(n, p) ≤ x] = sig, or 1 if
// x ≥ n. (This is the Beta(x+1, n−x) quantile at 1 − sig that JAX uses.)
func clopperPearsonUpper(b *binomTerms, x, n int, sig float64) float64 {
	if x >= n {
		return 1
	}
	// F(θ) = P[Bin(n, p) ≤ x] falls strictly in the log-odds θ of p, with
	// dF/dθ = −(n−x)·p·P[X = x]. Newton's method on log F − log sig,
	// safeguarded by bisection inside a bracket found by doubling, to
	// ~1e-12 in θ.
	ls := math.Log(sig)
	eval := func(theta float64) (g, dg float64) {
		b.fill(n, theta)
		f := b.lower(x)
		pmf := 0.0
		if x >= b.lo && x <= b.hi {
			pmf = b.t[x] / b.z
		}
		p := 1 / (1 + math.Exp(-theta))
		return math.Log(f) - ls, -float64(n-x) * p * pmf / f
	}
	lo, hi := -1.0, 1.0
	for g, _ := eval(lo); g < 0; g, _ = eval(lo) {
		lo *= 2
		if lo < -1e3 {
			return 0
		}
	}
	for g, _ := eval(hi); g > 0; g, _ = eval(hi) {
		hi *= 2
		if hi > 1e3 {
			return 1
		}
	}
	theta := 0.5 * (lo + hi)
	for it := 0; it < 200; it++ {
		g, dg := eval(theta)
		if g == 0 {
			break
		}
		if g > 0 {
			lo = theta
		} else {
			hi = theta
		}
		next := theta - g/dg
		if math.IsNaN(next) || next <= lo || next >= hi {
			next = 0.5 * (lo + hi)
		}
		tol := 1e-12 * math.Max(1, math.Abs(theta))
		if math.Abs(next-theta) <= tol || hi-lo <= tol {
			theta = next
			break
		}
		theta = next
	}
	return 1 / (1 + math.Exp(-theta))
}
