package optim

import (
	"fmt"
	"math"
	"strconv"

	"dptrain/internal/par"
)

// EMA keeps an exponential moving average of the weights, updated after
// every optimizer step: e ← d_t·e + (1 − d_t)·p. It is post-processing of
// the private iterates, so it costs no privacy (DESIGN §2, step 8).
//
// With warm-up, the decay of update t (counting from 0) is
// d_t = min(decay, (1 + t)/(10 + t)), the num_updates rule of TensorFlow's
// ExponentialMovingAverage: early averages (d_0 = 0.1, d_10 = 0.55, …) do
// not drag the random initialisation along for thousands of steps; the
// configured decay takes over at t = (10·decay − 1)/(1 − decay) (8,990
// updates for 0.999). Without warm-up d_t = decay.
//
// The average is kept in float32; each update is computed in float64 and
// rounded once, so small increments are not lost to a biased rounding.
type EMA struct {
	decay   float64
	warmup  bool
	updates int64
	avg     [][]float32
	k       emaKernel
	local   par.Worker
}

type emaKernel struct {
	e, p []float32
	d    float64
}

const emaGrain = 1 << 15

// NewEMA starts an average at a copy of params (not retained) with the
// given decay in [0, 1). A decay outside it is an error naming the field.
func NewEMA(params [][]float32, decay float64, warmup bool) (*EMA, error) {
	if !(decay >= 0 && decay < 1) {
		return nil, fmt.Errorf("optim: ema.decay: want a value in [0, 1), got %v", decay)
	}
	e := &EMA{decay: decay, warmup: warmup, avg: make([][]float32, len(params))}
	for i, p := range params {
		e.avg[i] = append([]float32(nil), p...)
	}
	return e, nil
}

// DecayAt returns the decay the update with index t (0-based) uses.
func (e *EMA) DecayAt(t int64) float64 {
	if !e.warmup {
		return e.decay
	}
	return min(e.decay, float64(1+t)/float64(10+t))
}

// Updates returns the number of updates applied.
func (e *EMA) Updates() int64 { return e.updates }

// Update folds params (not modified) into the average. Their lengths must
// match those given to NewEMA, else it panics with a *UsageError.
func (e *EMA) Update(params [][]float32) {
	if len(params) != len(e.avg) {
		usagef("EMA.Update", "%d tensors, want %d", len(params), len(e.avg))
	}
	for i, p := range params {
		if len(p) != len(e.avg[i]) {
			usagef("EMA.Update", "tensor %d has %d elements, want %d", i, len(p), len(e.avg[i]))
		}
	}
	e.k.d = e.DecayAt(e.updates)
	e.updates++
	for i, p := range params {
		e.k.e, e.k.p = e.avg[i], p
		par.Run(len(p), emaGrain, &e.k, &e.local)
	}
	e.k.e, e.k.p = nil, nil
}

func (k *emaKernel) Run(lo, hi int, _ *par.Worker) {
	e, p := k.e[lo:hi], k.p[lo:hi]
	a := 1 - k.d
	for i := range e {
		ei := float64(e[i])
		e[i] = float32(ei + a*(float64(p[i])-ei))
	}
}

// Params returns the averaged tensors. They are the EMA's own storage:
// read them (evaluate, save) but do not modify them.
func (e *EMA) Params() [][]float32 { return e.avg }

// State exports the average for a checkpoint: kind "ema", Steps = updates,
// scalars "decay" and "warmup" (1 or 0), tensors "ema/i" (aliasing the
// EMA's storage: save before the next Update).
func (e *EMA) State() State {
	w := 0.0
	if e.warmup {
		w = 1
	}
	s := State{Kind: "ema", Steps: e.updates, Scalars: map[string]float64{"decay": e.decay, "warmup": w}, Tensors: map[string][]float32{}}
	for i, a := range e.avg {
		s.Tensors[EMATensorName(i)] = a
	}
	return s
}

// Restore loads a state saved by State (copying the tensors). Kind,
// decay, warm-up and tensor sizes must match; otherwise it returns an
// error naming what differs and leaves the EMA unchanged.
func (e *EMA) Restore(s State) error {
	if s.Kind != "ema" {
		return fmt.Errorf("optim: ema state: kind %q, want \"ema\"", s.Kind)
	}
	if s.Steps < 0 {
		return fmt.Errorf("optim: ema state: steps %d < 0", s.Steps)
	}
	if d, ok := s.Scalars["decay"]; !ok || d != e.decay {
		return fmt.Errorf("optim: ema state: decay %v saved, %v configured", s.Scalars["decay"], e.decay)
	}
	if w, ok := s.Scalars["warmup"]; !ok || (w != 0) != e.warmup || math.IsNaN(w) {
		return fmt.Errorf("optim: ema state: warmup %v saved, %v configured", s.Scalars["warmup"], e.warmup)
	}
	if len(s.Tensors) != len(e.avg) {
		return fmt.Errorf("optim: ema state: %d tensors saved, want %d", len(s.Tensors), len(e.avg))
	}
	for i, a := range e.avg {
		key := EMATensorName(i)
		t, ok := s.Tensors[key]
		if !ok {
			return fmt.Errorf("optim: ema state: tensor %q missing", key)
		}
		if len(t) != len(a) {
			return fmt.Errorf("optim: ema state: tensor %q has %d elements, want %d", key, len(t), len(a))
		}
	}
	for i, a := range e.avg {
		copy(a, s.Tensors[EMATensorName(i)])
	}
	e.updates = s.Steps
	return nil
}

// EMATensorName is the name of the average of parameter tensor i in
// State.Tensors ("ema/i").
func EMATensorName(i int) string { return "ema/" + strconv.Itoa(i) }
