package train

import (
	"fmt"
	"math"
	"sort"

	"dptrain/data"
	"dptrain/nn"
	"dptrain/tensor"
)

// EvalResult is the accuracy of a model on a dataset.
type EvalResult struct {
	Examples      int       `json:"examples"`
	Top1          float64   `json:"top1"`
	Top5          float64   `json:"top5"`
	Loss          JSONFloat `json:"loss"` // NaN (null) for a diverged model
	PerClass      []float64 `json:"per_class_accuracy"`
	PerClassCount []int     `json:"per_class_count"`
	Classes       []string  `json:"classes,omitempty"`
}

// Evaluate runs the model over the whole dataset (deterministic eval
// transform: centre crops, no flips) in chunks of `chunk` examples.
func Evaluate(m *nn.Model, ds data.Dataset, tr data.Transform, chunk int) (*EvalResult, error) {
	if chunk <= 0 {
		chunk = 256
	}
	return evaluate(m, ds.NumClasses(), ds.Classes(), nil, func(fn func(*data.Batch) error) error {
		return data.EvalBatches(ds, tr, chunk, 0, fn)
	})
}

// evaluate scores m on the batches each yields (rows shaped as shape when
// it is not nil, else as the batch's C×H×W) for k classes.
func evaluate(m *nn.Model, k int, classes []string, shape []int, each func(func(*data.Batch) error) error) (*EvalResult, error) {
	res := &EvalResult{PerClass: make([]float64, k), PerClassCount: make([]int, k), Classes: classes}
	var loss nn.SoftmaxCrossEntropy
	var top1, top5 int
	var lossSum float64
	correct := make([]int, k)
	err := each(func(b *data.Batch) error {
		n := b.N * b.K
		if n == 0 {
			return nil
		}
		x := batchTensor(b, shape)
		logits := m.Forward(x, false)
		for i, l := range loss.Forward(logits, b.Labels[:n]) {
			if math.IsNaN(float64(l)) {
				return fmt.Errorf("evaluation: NaN loss on example %d", b.Indices[i/b.K])
			}
			lossSum += float64(l)
		}
		c := logits.Shape[1]
		idx := make([]int, c)
		for i := 0; i < n; i++ {
			row := logits.Data[i*c : (i+1)*c]
			y := b.Labels[i]
			for j := range idx {
				idx[j] = j
			}
			sort.SliceStable(idx, func(a, bb int) bool { return row[idx[a]] > row[idx[bb]] })
			if idx[0] == y {
				top1++
				correct[y]++
			}
			for j := 0; j < min(5, c); j++ {
				if idx[j] == y {
					top5++
				}
			}
			res.PerClassCount[y]++
		}
		res.Examples += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res.Examples > 0 {
		res.Top1 = float64(top1) / float64(res.Examples)
		res.Top5 = float64(top5) / float64(res.Examples)
		res.Loss = JSONFloat(lossSum / float64(res.Examples))
	}
	for i := range correct {
		if res.PerClassCount[i] > 0 {
			res.PerClass[i] = float64(correct[i]) / float64(res.PerClassCount[i])
		}
	}
	return res, nil
}

// EvalCheckpointResult is what `dptrain eval` reports.
type EvalCheckpointResult struct {
	Checkpoint string `json:"checkpoint"`
	Step       int64  `json:"step"`
	Weights    string `json:"weights"` // "ema" or "raw"
	EvalResult
}

// batchTensor views the rows of b as a tensor: N·K rows of shape (when
// not nil: the feature shape of a cached prefix) or of C×H×W.
func batchTensor(b *data.Batch, shape []int) *tensor.Tensor {
	rows := b.N * b.K
	if shape == nil {
		return tensor.FromData(b.X[:rows*b.C*b.H*b.W], rows, b.C, b.H, b.W)
	}
	return tensor.FromData(b.X[:rows*b.C*b.H*b.W], append([]int{rows}, shape...)...)
}
