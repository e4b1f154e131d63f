package accounting

import "math"

// pmf is a discretised privacy loss distribution: mass probs[i] at privacy
// loss (lower+i)·d for the accountant's interval d, plus mass inf at +∞.
// A nil *pmf is the identity (all mass at loss 0).
type pmf struct {
	lower int
	probs []float64
	inf   float64
}

// tailMassTruncation is the mass a composition may move to +∞ (pessimistic)
// when it truncates tails, as in dp_accounting.
const tailMassTruncation = 1e-15

// selfCompose returns p composed with itself n ≥ 1 times: the n-th power of
// its DFT, over a window [lo, hi] of the result chosen by Chernoff bounds so
// that at most tailMassTruncation of mass lies outside (that mass is counted
// at +∞), as dp_accounting's DensePLDPmf.self_compose.
func (p *pmf) selfCompose(n, maxSize int) (*pmf, error) {
	if p == nil || n == 0 {
		return nil, nil
	}
	L := len(p.probs)
	lo, hi := 0, (L-1)*n
	if (L-1) != 0 && hi/(L-1) != n {
		return nil, tooLarge("%d compositions of a %d-point PLD overflow", n, L)
	}
	// Chernoff: P[S ≥ b] ≤ exp(n·log M(t) − t·b) for t > 0, similarly below.
	logTail := math.Log(2 / tailMassTruncation)
	for k := -20; k <= 20; k++ {
		if k == 0 {
			continue
		}
		t := float64(k) / float64(L)
		b := (float64(n)*logMGF(p.probs, t) + logTail) / t
		if math.IsNaN(b) || math.IsInf(b, 0) {
			continue
		}
		if t > 0 && b < float64(hi) {
			hi = int(math.Ceil(b))
		}
		if t < 0 && b > float64(lo) {
			lo = int(math.Floor(b))
		}
	}
	outLen := hi - lo + 1
	if outLen < 1 {
		outLen = 1
	}
	size := max(nextPow2(max(outLen, L)), 4)
	if size > maxSize {
		return nil, tooLarge("%d compositions need a %d-point FFT (limit %d)", n, size, maxSize)
	}
	spec := rfft(p.probs, size)
	for i := range spec {
		spec[i] = cpow(spec[i], n)
	}
	buf := irfft(spec, size)
	out := make([]float64, outLen)
	for i := range out {
		// The cyclic convolution wraps modulo size; index lo+i of the
		// linear result sits at (lo+i) mod size.
		out[i] = buf[((lo+i)%size+size)%size]
	}
	inf := tailMassTruncation - math.Expm1(float64(n)*math.Log1p(-p.inf))
	return &pmf{lower: p.lower*n + lo, probs: out, inf: math.Min(inf, 1)}, nil
}

// logMGF returns log Σ_i probs[i]·e^{i·t} (negative masses from FFT noise
// are ignored). The weights e^{i·t−m} are built by repeated multiplication:
// |i·t| ≤ 20 here, so nothing under- or overflows, and the relative error
// (≤ L ulp) only nudges a Chernoff bound.
func logMGF(probs []float64, t float64) float64 {
	m := 0.0
	if t > 0 {
		m = float64(len(probs)-1) * t
	}
	w, r := math.Exp(-m), math.Exp(t)
	s := 0.0
	for _, v := range probs {
		if v > 0 {
			s += v * w
		}
		w *= r
	}
	return m + math.Log(s)
}

// composePMF returns the composition of a and b (linear convolution by FFT)
// with at most tailMassTruncation of mass truncated from the tails: the
// lower tail moves onto the first kept point, the upper tail to +∞
// (pessimistic), as dp_accounting's DensePLDPmf.compose.
func composePMF(a, b *pmf, maxSize int) (*pmf, error) {
	if a == nil {
		return b, nil
	}
	if b == nil {
		return a, nil
	}
	if n := nextPow2(len(a.probs) + len(b.probs) - 1); n > maxSize {
		return nil, tooLarge("composing PLDs of %d and %d points needs a %d-point FFT (limit %d)",
			len(a.probs), len(b.probs), n, maxSize)
	}
	probs := convolve(a.probs, b.probs)
	inf := a.inf + b.inf - a.inf*b.inf
	half := tailMassTruncation / 2
	left := len(probs)
	s := 0.0
	for i, v := range probs {
		s += v
		if s > half {
			left = i
			break
		}
	}
	right := 0
	s = 0
	for i := len(probs) - 1; i >= 0; i-- {
		s += probs[i]
		if s > half {
			right = i + 1
			break
		}
	}
	right = max(right, left+1)
	if left >= len(probs) { // all mass negligible: keep one point
		left, right = len(probs)-1, len(probs)
	}
	leftMass, rightMass := 0.0, 0.0
	for _, v := range probs[:left] {
		leftMass += v
	}
	for _, v := range probs[right:] {
		rightMass += v
	}
	kept := append([]float64(nil), probs[left:right]...)
	kept[0] += leftMass
	return &pmf{lower: a.lower + b.lower + left, probs: kept, inf: math.Min(inf+rightMass, 1)}, nil
}

// epsilonForDelta returns the smallest ε ≥ 0 whose hockey-stick divergence
// is at most delta (+Inf when the mass at +∞ exceeds delta). d is the
// discretisation interval.
func (p *pmf) epsilonForDelta(d, delta float64) float64 {
	if p == nil {
		return 0
	}
	if p.inf > delta {
		return math.Inf(1)
	}
	// δ(ε) = inf + Σ_{loss>ε} prob·(1 − e^{ε−loss}); walking down from the
	// largest loss, ε = log((upper − δ)/lower) once that is ≥ the next loss.
	upper, lowerMass := p.inf, 0.0
	for i := len(p.probs) - 1; i >= 0; i-- {
		loss := float64(p.lower+i) * d
		if upper > delta && lowerMass > 0 && math.Log((upper-delta)/lowerMass) >= loss {
			break
		}
		prob := p.probs[i]
		upper += prob
		lowerMass += math.Exp(-loss) * prob
		if upper >= delta && lowerMass == 0 {
			return math.Max(0, loss)
		}
	}
	if upper <= lowerMass+delta {
		return 0
	}
	return math.Log((upper - delta) / lowerMass)
}

// deltaForEpsilon returns the hockey-stick divergence at eps.
func (p *pmf) deltaForEpsilon(d, eps float64) float64 {
	if p == nil {
		return 0
	}
	delta := p.inf
	for i := len(p.probs) - 1; i >= 0; i-- {
		loss := float64(p.lower+i) * d
		if loss <= eps {
			break
		}
		delta += -math.Expm1(eps-loss) * p.probs[i]
	}
	return math.Min(math.Max(delta, 0), 1)
}

// connectDots returns the pessimistic connect-the-dots PMF (Doroshenko et
// al. 2022, Algorithm 1) supported on the losses lo·d, (lo+1)·d, …, hi·d
// and +∞, given the mechanism's hockey-stick divergences deltas[k] at
// ε = (lo+k)·d (as dp_accounting's create_pmf_pessimistic_connect_dots_fixed_gap).
func connectDots(d float64, lo int, deltas []float64) *pmf {
	n := len(deltas)
	ds := make([]float64, n)
	copy(ds, deltas)
	for k := 1; k < n; k++ { // δ(ε) is non-increasing; remove rounding wiggles
		ds[k] = math.Min(ds[k], ds[k-1])
	}
	probs := make([]float64, n)
	if n == 1 {
		probs[0] = 1 - ds[0]
		return &pmf{lower: lo, probs: probs, inf: ds[0]}
	}
	em1, e := math.Expm1(d), math.Exp(d)
	probs[0] = 1 - ds[0] + (ds[1]-ds[0])/em1
	for k := 1; k < n-1; k++ {
		probs[k] = ((ds[k+1] - ds[k]) - (ds[k]-ds[k-1])*e) / em1
	}
	probs[n-1] = (ds[n-1] - ds[n-2]) / math.Expm1(-d)
	for k, v := range probs {
		probs[k] = math.Max(0, v)
	}
	return &pmf{lower: lo, probs: probs, inf: ds[n-1]}
}
