package accounting

import (
	"fmt"
	"math"
)

// DefaultDiscretizationInterval is dp_accounting's default PLD interval.
const DefaultDiscretizationInterval = 1e-4

// DefaultPLDMaxSize bounds the number of points (and FFT length) of any PLD
// array: 1<<23 points are 128 MiB of complex FFT buffer.
const DefaultPLDMaxSize = 1 << 23

// PLDOptions configures a [PLD] accountant.
type PLDOptions struct {
	// DiscretizationInterval is the spacing of the privacy-loss grid; ε is
	// pessimistic (an upper bound) and, for a single event, tight to within
	// about this much. Smaller is tighter, slower and bigger. 0 means
	// DefaultDiscretizationInterval (1e-4, as dp_accounting).
	DiscretizationInterval float64
	// MaxSize bounds the length of any array (and FFT) the accountant
	// builds; beyond it Compose returns an error wrapping [ErrTooLarge].
	// 0 means DefaultPLDMaxSize.
	MaxSize int
}

// PLD is a privacy-loss-distribution accountant for add-or-remove-one
// adjacency (see the package documentation). It keeps the discretised PLDs
// of both adjacency directions and reports the worse of the two.
type PLD struct {
	d       float64
	maxSize int
	remove  *pmf // nil: identity
	add     *pmf
	log     eventLog // what was composed, for error messages
}

// NewPLD returns an empty PLD accountant. It panics with a
// *[DiscretizationError] if the interval is negative or not finite.
func NewPLD(opts PLDOptions) *PLD {
	d := opts.DiscretizationInterval
	if d == 0 {
		d = DefaultDiscretizationInterval
	}
	if !(d > 0) || math.IsInf(d, 1) {
		panic(&DiscretizationError{Interval: opts.DiscretizationInterval})
	}
	m := opts.MaxSize
	if m <= 0 {
		m = DefaultPLDMaxSize
	}
	return &PLD{d: d, maxSize: m}
}

// DiscretizationInterval returns the accountant's loss-grid spacing.
func (a *PLD) DiscretizationInterval() float64 { return a.d }

// Supports implements [Accountant].
func (a *PLD) Supports(e Event) bool { return e != nil && supportsGaussianFamily(e) }

// Compose implements [Accountant]. Besides invalid and unsupported events
// it fails (leaving the state unchanged) when the PLD would exceed
// MaxSize points.
func (a *PLD) Compose(e Event) error {
	if err := check(e, a.Supports, "PLD"); err != nil {
		return err
	}
	rem, add, err := a.eventPMFs(e, 1)
	if err != nil {
		return err
	}
	newRem, err := composePMF(a.remove, rem, a.maxSize)
	if err != nil {
		return err
	}
	newAdd := newRem
	if a.add != a.remove || add != rem {
		if newAdd, err = composePMF(a.add, add, a.maxSize); err != nil {
			return err
		}
	}
	a.remove, a.add = newRem, newAdd
	a.log.add(e)
	return nil
}

// eventPMFs returns the (remove, add) PLDs of e composed count times. For
// symmetric results the two pointers are equal.
func (a *PLD) eventPMFs(e Event, count int) (rem, add *pmf, err error) {
	if count == 0 {
		return nil, nil, nil
	}
	switch x := e.(type) {
	case Gaussian:
		// n Gaussians with σ compose exactly to one with σ/√n.
		g := subsampledGaussian{sigma: x.NoiseMultiplier / math.Sqrt(float64(count)), q: 1}
		p, err := g.pmf(a.d, a.maxSize)
		if err != nil && count > 1 {
			err = fmt.Errorf("%d compositions of %v are one Gaussian with σ/√%d: %w", count, x, count, err)
		}
		return p, p, err
	case PoissonSampled:
		sigma := x.Event.(Gaussian).NoiseMultiplier
		build := func(add bool) (*pmf, error) {
			g := subsampledGaussian{sigma: sigma, q: x.SamplingRate, add: add}
			p, err := g.pmf(a.d, a.maxSize)
			if err != nil {
				return nil, err
			}
			return p.selfCompose(count, a.maxSize)
		}
		if x.SamplingRate == 1 {
			rem, err = build(false)
			return rem, rem, err
		}
		// The two directions are independent: build them concurrently.
		var errAdd error
		done := make(chan struct{})
		go func() {
			add, errAdd = build(true)
			close(done)
		}()
		rem, err = build(false)
		<-done
		return rem, add, firstError(err, errAdd)
	case SelfComposed:
		n := count * x.Count
		if x.Count != 0 && n/x.Count != count {
			return nil, nil, tooLarge("composition count %d × %d overflows", count, x.Count)
		}
		return a.eventPMFs(x.Event, n)
	case Composed:
		for _, s := range x.Events {
			r, ad, err := a.eventPMFs(s, count)
			if err != nil {
				return nil, nil, err
			}
			symmetric := rem == add && r == ad
			if rem, err = composePMF(rem, r, a.maxSize); err != nil {
				return nil, nil, err
			}
			if symmetric {
				add = rem
			} else if add, err = composePMF(add, ad, a.maxSize); err != nil {
				return nil, nil, err
			}
		}
		return rem, add, nil
	}
	return nil, nil, fmt.Errorf("%w: %v", ErrUnsupported, e) // unreachable after check
}

// Epsilon implements [Accountant]: the larger ε of the two adjacency
// directions, +Inf if the mass at infinite loss exceeds δ.
func (a *PLD) Epsilon(delta float64) (float64, error) {
	if err := validateDelta(delta); err != nil {
		return 0, err
	}
	eps := a.remove.epsilonForDelta(a.d, delta)
	if a.add != a.remove {
		eps = math.Max(eps, a.add.epsilonForDelta(a.d, delta))
	}
	if math.IsNaN(eps) {
		return 0, nanError("PLD", fmt.Sprintf("ε(δ=%g)", delta), a.log.events())
	}
	return eps, nil
}

// Delta implements [Accountant].
func (a *PLD) Delta(epsilon float64) (float64, error) {
	if err := validateEpsilon(epsilon); err != nil {
		return 0, err
	}
	d := a.remove.deltaForEpsilon(a.d, epsilon)
	if a.add != a.remove {
		d = math.Max(d, a.add.deltaForEpsilon(a.d, epsilon))
	}
	if math.IsNaN(d) {
		return 0, nanError("PLD", fmt.Sprintf("δ(ε=%g)", epsilon), a.log.events())
	}
	return d, nil
}

// stepPLD holds the single-step PLDs of one (q, σ), so that ε after n steps
// can be asked for many n without rebuilding them.
type stepPLD struct {
	acc       *PLD
	q, sigma  float64
	rem, add  *pmf
	symmetric bool
}

func newStepPLD(q, sigma float64, opts PLDOptions) (*stepPLD, error) {
	a := NewPLD(opts)
	g := subsampledGaussian{sigma: sigma, q: q}
	rem, err := g.pmf(a.d, a.maxSize)
	if err != nil {
		return nil, err
	}
	s := &stepPLD{acc: a, q: q, sigma: sigma, rem: rem, add: rem, symmetric: q == 1}
	if q < 1 {
		g.add = true
		if s.add, err = g.pmf(a.d, a.maxSize); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// epsilon returns ε(δ) after n steps.
func (s *stepPLD) epsilon(n int, delta float64) (float64, error) {
	one := func(p *pmf) (float64, error) {
		c, err := p.selfCompose(n, s.acc.maxSize)
		if err != nil {
			return 0, err
		}
		return c.epsilonForDelta(s.acc.d, delta), nil
	}
	if s.symmetric {
		eps, err := one(s.rem)
		return s.checked(eps, err, n, delta)
	}
	var epsAdd float64
	var errAdd error
	done := make(chan struct{})
	go func() {
		epsAdd, errAdd = one(s.add)
		close(done)
	}()
	eps, err := one(s.rem)
	<-done
	return s.checked(math.Max(eps, epsAdd), firstError(err, errAdd), n, delta)
}

// checked turns a NaN ε of n steps into an error naming the steps.
func (s *stepPLD) checked(eps float64, err error, n int, delta float64) (float64, error) {
	if err != nil {
		return 0, err
	}
	if math.IsNaN(eps) {
		return 0, nanError("PLD", fmt.Sprintf("ε(δ=%g)", delta), []Event{Steps(s.q, s.sigma, n)})
	}
	return eps, nil
}

// firstError returns the error of the remove direction if it failed, else
// that of the add direction. Both directions are built from the same
// event, so one error says what went wrong (and joining two, which usually
// differ only in a point count, would repeat the advice of ErrTooLarge).
func firstError(remove, add error) error {
	if remove != nil {
		return remove
	}
	return add
}
