package accounting

import (
	"fmt"
	"math"
)

// The searches behind the calibration functions: continuous (bisect, then
// refineSigma) for the smallest x with ε(x) ≤ target, discrete
// (searchSteps) for the largest n with ε(n) ≤ target. They are generic
// over the ε function; the callers choose the event and the accountant.

// bisect finds the smallest x in [p.Lo, p.Hi] with eps(x) ≤ target, to
// relative tolerance tol, assuming eps is non-increasing: it brackets the
// answer by steps of the factor step from guess, then refines. It returns
// x and eps(x).
func bisect(epsOf func(float64) (float64, error), target, guess, step, tol float64, p Param) (float64, float64, error) {
	// The accountants never return a NaN ε with a nil error; this guard
	// keeps a NaN from ever steering (or ending) the search regardless.
	eps := func(x float64) (float64, error) {
		e, err := epsOf(x)
		if err == nil && (math.IsNaN(e) || math.IsNaN(x)) {
			return 0, fmt.Errorf("%w: ε of %s=%g is NaN", ErrNumerical, p.Name, x)
		}
		return e, err
	}
	guess = math.Min(math.Max(guess, p.Lo), p.Hi)
	e, err := eps(guess)
	if err != nil {
		return 0, 0, err
	}
	// Invariant once bracketed: eps(lo) = eLo > target ≥ eps(hi) = eHi.
	var lo, hi, eLo, eHi float64
	if e <= target {
		hi, eHi = guess, e
		for {
			if hi <= p.Lo {
				return hi, eHi, nil
			}
			lo = math.Max(hi/step, p.Lo)
			if eLo, err = eps(lo); err != nil {
				return 0, 0, err
			}
			if eLo > target {
				break
			}
			hi, eHi = lo, eLo
		}
	} else {
		lo, eLo = guess, e
		for {
			if lo >= p.Hi {
				return 0, 0, &UnreachableError{Param: p.Name, X: lo, Epsilon: eLo, Target: target}
			}
			hi = math.Min(lo*step, p.Hi)
			if eHi, err = eps(hi); err != nil {
				return 0, 0, err
			}
			if eHi <= target {
				break
			}
			lo, eLo = hi, eHi
		}
	}
	return refineSigma(eps, target, lo, hi, eLo, eHi, tol)
}

// refineSigma shrinks a bracket lo < hi with eps(lo) = eLo > target ≥
// eps(hi) = eHi until hi/lo ≤ 1+tol, and returns hi and eps(hi). It steps by
// the Illinois variant of regula falsi on (log σ, log ε − log target), in
// which ε is close to linear, so a handful of evaluations replace the
// log2(log(hi/lo)/tol) of bisection; it bisects when ε is 0 or infinite at
// an end, or after three steps that kept the same end (kinks of the RDP
// minimum over orders, PLD discretisation steps).
func refineSigma(eps func(float64) (float64, error), target, lo, hi, eLo, eHi, tol float64) (float64, float64, error) {
	lt := math.Log(target)
	wLo, wHi := math.Log(eLo)-lt, math.Log(eHi)-lt // weights: wLo > 0 ≥ wHi
	kept, run := 0, 0                              // end kept by the last steps (-1 lo, +1 hi), how often
	for hi/lo > 1+tol {
		width := math.Log(hi / lo)
		x := math.Log(lo) + width/2
		if run < 3 && !math.IsInf(wLo, 0) && !math.IsInf(wHi, 0) && wLo-wHi > 0 {
			x = math.Log(lo) + width*wLo/(wLo-wHi)
		}
		// Stay a quarter tolerance inside both ends, so that a step next to
		// the root also closes the bracket.
		margin := math.Min(math.Log1p(tol)/4, width/4)
		x = math.Min(math.Max(x, math.Log(lo)+margin), math.Log(hi)-margin)
		mid := math.Exp(x)
		em, err := eps(mid)
		if err != nil {
			return 0, 0, err
		}
		keep := +1 // the lo end is replaced, hi kept
		if em <= target {
			keep = -1
		}
		if keep == kept {
			run++
		} else {
			kept, run = keep, 1
		}
		if em <= target {
			hi, eHi, wHi = mid, em, math.Log(em)-lt
			if run >= 2 {
				wLo /= 2 // Illinois: the end kept twice loses weight
			}
		} else {
			lo, wLo = mid, math.Log(em)-lt
			if run >= 2 {
				wHi /= 2
			}
		}
		if run > 3 {
			run = 0
		}
	}
	return hi, eHi, nil
}

// searchSteps returns the largest n in [0, MaxStepsLimit] with eps(n) ≤
// target, for eps non-decreasing in n, starting the bracket at guess ≥ 1.
func searchSteps(eps func(int) (float64, error), target float64, guess int) (int, error) {
	ok := func(n int) (bool, error) {
		e, err := eps(n)
		return e <= target, err
	}
	var lo, hi int // invariant: ok(lo) (lo may be 0), !ok(hi)
	g, err := ok(guess)
	if err != nil {
		return 0, err
	}
	if g {
		lo = guess
		for {
			if lo >= MaxStepsLimit {
				return MaxStepsLimit, nil
			}
			hi = min(lo+lo/4+1, MaxStepsLimit)
			h, err := ok(hi)
			if err != nil {
				return 0, err
			}
			if !h {
				break
			}
			lo = hi
		}
	} else {
		hi = guess
		for {
			lo = hi * 4 / 5
			if lo == 0 {
				break
			}
			l, err := ok(lo)
			if err != nil {
				return 0, err
			}
			if l {
				break
			}
			hi = lo
		}
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		m, err := ok(mid)
		if err != nil {
			return 0, err
		}
		if m {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}
