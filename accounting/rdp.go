package accounting

import (
	"fmt"
	"math"
)

// RDP is a Rényi-DP accountant (see the package documentation). The zero
// value is not usable; call [NewRDP].
type RDP struct {
	orders []float64
	rdp    []float64 // accumulated RDP at each order
	log    eventLog  // what was composed, for error messages
}

// DefaultOrders returns dp_accounting's default RDP orders: 1.1, 1.2, …,
// 10.9, then 11, 12, …, 63, then 128, 256, 512, 1024.
func DefaultOrders() []float64 {
	orders := make([]float64, 0, 99+53+4)
	for x := 1; x < 100; x++ {
		orders = append(orders, 1+float64(x)/10)
	}
	for a := 11; a < 64; a++ {
		orders = append(orders, float64(a))
	}
	return append(orders, 128, 256, 512, 1024)
}

var defaultOrders = DefaultOrders()

// NewRDP returns an RDP accountant at the given orders (nil: the defaults of
// [DefaultOrders]). The slice is copied. It panics with an *[OrdersError]
// if an order is not finite and > 1.
func NewRDP(orders []float64) *RDP {
	if orders == nil {
		orders = defaultOrders
	}
	for _, a := range orders {
		if !(a > 1) || math.IsInf(a, 1) {
			panic(&OrdersError{Order: a})
		}
	}
	return &RDP{
		orders: append([]float64(nil), orders...),
		rdp:    make([]float64, len(orders)),
	}
}

// Orders returns a copy of the accountant's orders.
func (a *RDP) Orders() []float64 { return append([]float64(nil), a.orders...) }

// Values appends the accumulated RDP at each order to dst and returns it.
func (a *RDP) Values(dst []float64) []float64 { return append(dst, a.rdp...) }

// Supports implements [Accountant].
func (a *RDP) Supports(e Event) bool { return e != nil && supportsGaussianFamily(e) }

// Compose implements [Accountant].
func (a *RDP) Compose(e Event) error {
	if err := check(e, a.Supports, "RDP"); err != nil {
		return err
	}
	add := make([]float64, len(a.orders))
	tmp := make([]float64, len(a.orders))
	a.accumulate(add, tmp, e, 1)
	for k, v := range add {
		if math.IsNaN(v) {
			return fmt.Errorf("%w: the RDP of %v at order %g is NaN", ErrNumerical, e, a.orders[k])
		}
	}
	for k := range a.rdp {
		a.rdp[k] += add[k]
	}
	a.log.add(e)
	return nil
}

// accumulate adds count × RDP(e) to dst, using tmp as scratch.
func (a *RDP) accumulate(dst, tmp []float64, e Event, count float64) {
	if count == 0 {
		return
	}
	switch x := e.(type) {
	case Gaussian:
		gaussianRDP(tmp, a.orders, x.NoiseMultiplier)
	case PoissonSampled:
		poissonGaussianRDP(tmp, a.orders, x.SamplingRate, x.Event.(Gaussian).NoiseMultiplier)
	case SelfComposed:
		a.accumulate(dst, tmp, x.Event, count*float64(x.Count))
		return
	case Composed:
		for _, s := range x.Events {
			a.accumulate(dst, tmp, s, count)
		}
		return
	}
	for k := range dst {
		dst[k] += count * tmp[k]
	}
}

// Epsilon implements [Accountant].
func (a *RDP) Epsilon(delta float64) (float64, error) {
	eps, _, err := a.EpsilonAndOrder(delta)
	return eps, err
}

// EpsilonAndOrder returns ε for δ and the order that achieves it.
func (a *RDP) EpsilonAndOrder(delta float64) (eps, order float64, err error) {
	if err := validateDelta(delta); err != nil {
		return 0, 0, err
	}
	eps, order = rdpToEpsilon(a.orders, a.rdp, delta)
	if math.IsNaN(eps) {
		return 0, 0, nanError("RDP", fmt.Sprintf("ε(δ=%g)", delta), a.log.events())
	}
	return eps, order, nil
}

// Delta implements [Accountant].
func (a *RDP) Delta(epsilon float64) (float64, error) {
	d, _, err := a.DeltaAndOrder(epsilon)
	return d, err
}

// DeltaAndOrder returns δ for ε and the order that achieves it.
func (a *RDP) DeltaAndOrder(epsilon float64) (delta, order float64, err error) {
	if err := validateEpsilon(epsilon); err != nil {
		return 0, 0, err
	}
	delta, order = rdpToDelta(a.orders, a.rdp, epsilon)
	if math.IsNaN(delta) {
		return 0, 0, nanError("RDP", fmt.Sprintf("δ(ε=%g)", epsilon), a.log.events())
	}
	return delta, order, nil
}
