package optim

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"dptrain/internal/par"
)

// Kind names an optimizer; its values are the config's optimizer names.
type Kind string

// Optimizer kinds.
const (
	KindSGD      Kind = "sgd"
	KindMomentum Kind = "momentum"
	KindNesterov Kind = "nesterov"
	KindAdam     Kind = "adam"
)

// Kinds lists the optimizer kinds, in the order error messages give them.
func Kinds() []string { return []string{"sgd", "momentum", "nesterov", "adam"} }

// ParseKind returns the kind named s, or an error listing the kinds.
func ParseKind(s string) (Kind, error) {
	if slices.Contains(Kinds(), s) {
		return Kind(s), nil
	}
	return "", fmt.Errorf("want one of %s; got %q", strings.Join(Kinds(), ", "), s)
}

// Config holds an optimizer's hyperparameters. The learning rate
// is not part of it: it is passed to every Step (from a Schedule).
type Config struct {
	Kind        Kind    // sgd, momentum, nesterov or adam
	Momentum    float64 // μ for momentum and nesterov, in (0, 1); 0 for sgd and adam
	Beta1       float64 // adam: first-moment decay, in [0, 1)
	Beta2       float64 // adam: second-moment decay, in [0, 1)
	Eps         float64 // adam: > 0, added to √v̂
	WeightDecay float64 // λ ≥ 0, decoupled: p ← p − η·λ·p on tensors the mask selects
}

// DefaultConfig returns the usual hyperparameters for kind:
// μ = 0.9 for momentum and nesterov; β1 = 0.9, β2 = 0.999, ε = 1e-8 for
// adam; no weight decay. An unknown kind is returned as is (Validate
// reports it).
func DefaultConfig(kind Kind) Config {
	c := Config{Kind: kind}
	switch kind {
	case KindMomentum, KindNesterov:
		c.Momentum = 0.9
	case KindAdam:
		c.Beta1, c.Beta2, c.Eps = 0.9, 0.999, 1e-8
	}
	return c
}

// Validate reports the first invalid field, by name.
func (c Config) Validate() error {
	bad := func(field, want string, got float64) error {
		return fmt.Errorf("optim: optimizer.%s: want %s for kind %q, got %v", field, want, c.Kind, got)
	}
	if !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0) {
		return bad("weight_decay", "a finite value >= 0", c.WeightDecay)
	}
	switch c.Kind {
	case KindSGD:
		if c.Momentum != 0 {
			return bad("momentum", "0 (use kind momentum or nesterov)", c.Momentum)
		}
	case KindMomentum, KindNesterov:
		if !(c.Momentum > 0 && c.Momentum < 1) {
			return bad("momentum", "a value in (0, 1)", c.Momentum)
		}
	case KindAdam:
		if c.Momentum != 0 {
			return bad("momentum", "0 (adam uses beta1)", c.Momentum)
		}
		if !(c.Beta1 >= 0 && c.Beta1 < 1) {
			return bad("beta1", "a value in [0, 1)", c.Beta1)
		}
		if !(c.Beta2 >= 0 && c.Beta2 < 1) {
			return bad("beta2", "a value in [0, 1)", c.Beta2)
		}
		if !(c.Eps > 0) || math.IsInf(c.Eps, 0) {
			return bad("eps", "a finite value > 0", c.Eps)
		}
	default:
		_, err := ParseKind(string(c.Kind))
		return fmt.Errorf("optim: optimizer.kind: %w", err)
	}
	return nil
}

// Optimizer updates parameter tensors in place from (noisy, normalised)
// gradients. It is not safe for concurrent use.
type Optimizer interface {
	// Step applies one update with learning rate lr (finite, ≥ 0):
	// params[i] is updated from grads[i], which is not modified. The
	// lengths must match the sizes the optimizer was built with, else it
	// panics with a *UsageError.
	Step(params, grads [][]float32, lr float64)
	// Steps returns the number of updates applied (Adam's t).
	Steps() int64
	// Config returns the hyperparameters.
	Config() Config
	// State exports the state for a checkpoint. Its tensors alias the
	// optimizer's buffers: save them before the next Step, do not modify.
	State() State
	// Restore loads a state saved by State (copying the tensors). The kind,
	// hyperparameters and tensor sizes must match; otherwise it returns an
	// error naming what differs and leaves the optimizer unchanged.
	Restore(s State) error
}

// State is the checkpointable state of an Optimizer or an EMA: a kind,
// a step count, scalar hyperparameters and named float32 tensors.
// Optimizer tensors are named "momentum/i" (momentum, nesterov) and
// "adam_m/i", "adam_v/i" (adam) for parameter tensor i, with scalars
// "momentum", "beta1", "beta2", "eps", "weight_decay"; see EMA for its own.
type State struct {
	Kind    string
	Steps   int64
	Scalars map[string]float64
	Tensors map[string][]float32
}

// New returns an optimizer for parameter tensors of the given
// sizes. decay selects the tensors weight decay applies to (usually not
// biases or normalisation parameters); nil means all. An invalid config is
// an error; sizes < 0 or a mask of the wrong length panic (*UsageError).
func New(cfg Config, sizes []int, decay []bool) (Optimizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if decay != nil && len(decay) != len(sizes) {
		usagef("New", "decay mask has %d entries for %d tensors", len(decay), len(sizes))
	}
	o := &optimizer{cfg: cfg, sizes: slices.Clone(sizes), decay: make([]bool, len(sizes))}
	for i, n := range sizes {
		if n < 0 {
			usagef("New", "size %d of tensor %d", n, i)
		}
		o.decay[i] = decay == nil || decay[i]
	}
	nbuf := 0
	switch cfg.Kind {
	case KindMomentum, KindNesterov:
		nbuf = 1
	case KindAdam:
		nbuf = 2
	}
	o.bufs = make([][][]float32, nbuf)
	for b := range o.bufs {
		o.bufs[b] = make([][]float32, len(sizes))
		for i, n := range sizes {
			o.bufs[b][i] = make([]float32, n)
		}
	}
	return o, nil
}

type optimizer struct {
	cfg   Config
	sizes []int
	decay []bool
	bufs  [][][]float32 // [buffer kind][tensor] (momentum; or adam m, v)
	steps int64
	k     optKernel
	local par.Worker
}

// optKernel is one tensor's update, run in parallel parts.
type optKernel struct {
	kind       Kind
	p, g, a, b []float32
	dec        float32 // multiplier from weight decay: 1 − η·λ or 1
	lr         float32
	mu         float32 // momentum
	b1, b2     float32 // adam: β1, β2
	c1, c2     float32 // adam: 1 − β1, 1 − β2
	step       float32 // adam: η / (1 − β1^t)
	rbc2       float32 // adam: 1 / √(1 − β2^t)
	eps        float32
}

const optGrain = 1 << 15

func (o *optimizer) Steps() int64   { return o.steps }
func (o *optimizer) Config() Config { return o.cfg }

func (o *optimizer) Step(params, grads [][]float32, lr float64) {
	if len(params) != len(o.sizes) || len(grads) != len(o.sizes) {
		usagef("Optimizer.Step", "%d params and %d grads for %d tensors", len(params), len(grads), len(o.sizes))
	}
	for i, n := range o.sizes {
		if len(params[i]) != n || len(grads[i]) != n {
			usagef("Optimizer.Step", "tensor %d: params %d, grads %d, want %d", i, len(params[i]), len(grads[i]), n)
		}
	}
	if !(lr >= 0) || math.IsInf(lr, 0) {
		usagef("Optimizer.Step", "learning rate must be finite and >= 0, got %v", lr)
	}
	o.steps++
	c := &o.cfg
	k := &o.k
	*k = optKernel{kind: c.Kind, lr: float32(lr), mu: float32(c.Momentum)}
	if c.Kind == KindAdam {
		t := float64(o.steps)
		k.b1, k.b2 = float32(c.Beta1), float32(c.Beta2)
		k.c1, k.c2 = float32(1-c.Beta1), float32(1-c.Beta2)
		k.step = float32(lr / (1 - math.Pow(c.Beta1, t)))
		k.rbc2 = float32(1 / math.Sqrt(1-math.Pow(c.Beta2, t)))
		k.eps = float32(c.Eps)
	}
	for i := range params {
		k.p, k.g = params[i], grads[i]
		k.dec = 1
		if o.decay[i] && c.WeightDecay != 0 {
			k.dec = float32(1 - lr*c.WeightDecay)
		}
		if len(o.bufs) > 0 {
			k.a = o.bufs[0][i]
		}
		if len(o.bufs) > 1 {
			k.b = o.bufs[1][i]
		}
		par.Run(len(k.p), optGrain, k, &o.local)
	}
	k.p, k.g, k.a, k.b = nil, nil, nil, nil
}

func (k *optKernel) Run(lo, hi int, _ *par.Worker) {
	p, g := k.p[lo:hi], k.g[lo:hi]
	dec, lr := k.dec, k.lr
	switch k.kind {
	case KindSGD:
		for i := range p {
			p[i] = p[i]*dec - lr*g[i]
		}
	case KindMomentum:
		v, mu := k.a[lo:hi], k.mu
		for i := range p {
			vi := mu*v[i] + g[i]
			v[i] = vi
			p[i] = p[i]*dec - lr*vi
		}
	case KindNesterov:
		v, mu := k.a[lo:hi], k.mu
		for i := range p {
			vi := mu*v[i] + g[i]
			v[i] = vi
			p[i] = p[i]*dec - lr*(g[i]+mu*vi)
		}
	case KindAdam:
		m, v := k.a[lo:hi], k.b[lo:hi]
		for i := range p {
			gi := g[i]
			mi := k.b1*m[i] + k.c1*gi
			vi := k.b2*v[i] + k.c2*gi*gi
			m[i], v[i] = mi, vi
			den := float32(math.Sqrt(float64(vi)))*k.rbc2 + k.eps
			p[i] = p[i]*dec - k.step*(mi/den)
		}
	}
}

func (o *optimizer) bufNames() []string {
	switch o.cfg.Kind {
	case KindMomentum, KindNesterov:
		return []string{"momentum"}
	case KindAdam:
		return []string{"adam_m", "adam_v"}
	}
	return nil
}

func (o *optimizer) scalars() map[string]float64 {
	c := o.cfg
	return map[string]float64{"momentum": c.Momentum, "beta1": c.Beta1, "beta2": c.Beta2, "eps": c.Eps, "weight_decay": c.WeightDecay}
}

func (o *optimizer) State() State {
	s := State{Kind: string(o.cfg.Kind), Steps: o.steps, Scalars: o.scalars(), Tensors: map[string][]float32{}}
	for b, name := range o.bufNames() {
		for i := range o.sizes {
			s.Tensors[name+"/"+strconv.Itoa(i)] = o.bufs[b][i]
		}
	}
	return s
}

func (o *optimizer) Restore(s State) error {
	if s.Kind != string(o.cfg.Kind) {
		return fmt.Errorf("optim: optimizer state: kind %q saved, %q configured", s.Kind, o.cfg.Kind)
	}
	if s.Steps < 0 {
		return fmt.Errorf("optim: optimizer state: steps %d < 0", s.Steps)
	}
	for name, want := range o.scalars() {
		got, ok := s.Scalars[name]
		if !ok {
			return fmt.Errorf("optim: optimizer state: scalar %q missing", name)
		}
		if got != want {
			return fmt.Errorf("optim: optimizer state: %s %v saved, %v configured", name, got, want)
		}
	}
	names := o.bufNames()
	if len(s.Tensors) != len(names)*len(o.sizes) {
		return fmt.Errorf("optim: optimizer state: %d tensors saved, want %d (%d per parameter tensor for %d tensors)", len(s.Tensors), len(names)*len(o.sizes), len(names), len(o.sizes))
	}
	for _, name := range names {
		for i, n := range o.sizes {
			key := name + "/" + strconv.Itoa(i)
			t, ok := s.Tensors[key]
			if !ok {
				return fmt.Errorf("optim: optimizer state: tensor %q missing", key)
			}
			if len(t) != n {
				return fmt.Errorf("optim: optimizer state: tensor %q has %d elements, want %d", key, len(t), n)
			}
		}
	}
	for b, name := range names {
		for i := range o.sizes {
			copy(o.bufs[b][i], s.Tensors[name+"/"+strconv.Itoa(i)])
		}
	}
	o.steps = s.Steps
	return nil
}
