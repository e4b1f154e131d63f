package kerasref

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// Run evaluates the network on one channels-last H×W×C input x (already
// preprocessed) and returns the output layer's values, flattened
// channels-last. x is not modified.
func (m *Model) Run(x []float64, h, w int) ([]float64, error) {
	return m.run(x, h, w, false)
}

// Logits is Run, but returns the output layer's values before its
// activation: for a classifier ending in Dense(softmax), the pre-softmax
// logits. The output layer must be a Dense or Conv2D (its activation is
// skipped) or an Activation layer (its input is returned).
func (m *Model) Logits(x []float64, h, w int) ([]float64, error) {
	return m.run(x, h, w, true)
}

func (m *Model) run(x []float64, h, w int, preact bool) ([]float64, error) {
	if h <= 0 || w <= 0 || len(x) == 0 || len(x)%(h*w) != 0 {
		return nil, fmt.Errorf("kerasref: input of %d values is not H×W×C for H=%d, W=%d", len(x), h, w)
	}
	c := len(x) / (h * w)
	if m.inputC != 0 && c != m.inputC {
		return nil, fmt.Errorf("kerasref: input has %d channels, input layer %q wants %d", c, m.topo.input.name, m.inputC)
	}
	vals := map[string]*tensor{}
	for i, n := range m.topo.ordered {
		var out *tensor
		if n == m.topo.input {
			out = &tensor{h: h, w: w, c: c, d: append([]float64(nil), x...)}
		} else {
			ins := make([]*tensor, len(n.inputs))
			for k, name := range n.inputs {
				ins[k] = vals[name]
			}
			var err error
			out, err = n.op.apply(ins, preact && n == m.topo.output)
			if errors.Is(err, errNoActivation) {
				return nil, fmt.Errorf("kerasref: output layer %q (%s) has no activation to strip", n.name, n.class)
			}
			if err != nil {
				return nil, fmt.Errorf("kerasref: layer %q (%s): %w", n.name, n.class, err)
			}
		}
		vals[n.name] = out
		for _, name := range n.inputs {
			if m.lastUse[name] == i && name != m.topo.output.name {
				delete(vals, name)
			}
		}
	}
	return vals[m.topo.output.name].d, nil
}

// parallelRows calls f(row) for every row in [0, rows) on up to
// GOMAXPROCS goroutines. Rows are independent, so results do not depend
// on the split.
func parallelRows(rows int, f func(row int)) {
	workers := min(runtime.GOMAXPROCS(0), rows)
	if workers <= 1 {
		for r := range rows {
			f(r)
		}
		return
	}
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() {
			for r := k; r < rows; r += workers {
				f(r)
			}
		})
	}
	wg.Wait()
}

// CaffeMean is the per-channel mean, in BGR order, that Keras'
// imagenet_utils "caffe" preprocessing subtracts.
var CaffeMean = [3]float64{103.939, 116.779, 123.68}

// CaffePreprocess is Keras' imagenet_utils.preprocess_input in "caffe"
// mode: rgb is an H×W×3 RGB image with values in 0..255; the result is a
// new H×W×3 slice in BGR order with CaffeMean subtracted and no scaling.
// rgb is not modified. It panics if len(rgb) != h*w*3.
func CaffePreprocess(rgb []float64, h, w int) []float64 {
	if len(rgb) != h*w*3 {
		panic(fmt.Sprintf("kerasref: CaffePreprocess: %d values for %d×%d×3", len(rgb), h, w))
	}
	out := make([]float64, len(rgb))
	for p := 0; p < h*w; p++ {
		r, g, b := rgb[3*p], rgb[3*p+1], rgb[3*p+2]
		out[3*p] = b - CaffeMean[0]
		out[3*p+1] = g - CaffeMean[1]
		out[3*p+2] = r - CaffeMean[2]
	}
	return out
}

// Softmax returns the softmax of v as a new slice (max-subtracted).
func Softmax(v []float64) []float64 {
	out := append([]float64(nil), v...)
	softmaxInPlace(out)
	return out
}
