package nn

import (
	"math"

	"dptrain/tensor"
)

// SoftmaxCrossEntropy is the softmax cross-entropy of logits [B, C] against
// integer labels, returning per-example losses (DP-SGD needs them per
// example, and the caller decides how to weight them).
type SoftmaxCrossEntropy struct {
	prob   *tensor.Tensor
	dx     *tensor.Tensor
	labels []int
	losses []float32
}

// Forward returns the per-example losses −log softmax(logits)[label]. The
// slice is owned by the loss and valid until the next Forward.
func (s *SoftmaxCrossEntropy) Forward(logits *tensor.Tensor, labels []int) []float32 {
	if len(logits.Shape) != 2 || logits.Shape[0] != len(labels) {
		shapePanic("SoftmaxCrossEntropy.Forward", "logits %v for %d labels", logits.Shape, len(labels))
	}
	b, c := logits.Shape[0], logits.Shape[1]
	s.prob = tensor.Ensure(s.prob, b, c)
	if cap(s.losses) < b {
		s.losses = make([]float32, b)
	}
	s.losses = s.losses[:b]
	s.labels = append(s.labels[:0], labels...)
	for i := 0; i < b; i++ {
		y := labels[i]
		if y < 0 || y >= c {
			shapePanic("SoftmaxCrossEntropy.Forward", "label %d out of range [0,%d)", y, c)
		}
		row := logits.Data[i*c : (i+1)*c]
		p := s.prob.Data[i*c : (i+1)*c]
		mx := row[0]
		for _, v := range row {
			mx = max(mx, v)
		}
		var z float64
		for j, v := range row {
			e := math.Exp(float64(v - mx))
			p[j] = float32(e)
			z += e
		}
		for j := range p {
			p[j] = float32(float64(p[j]) / z)
		}
		s.losses[i] = float32(math.Log(z) - float64(row[y]-mx))
	}
	return s.losses
}

// Backward returns ∂(Σ_i w_i·loss_i)/∂logits = w_i·(softmax_i − onehot(y_i)).
// weights has one entry per row, or is a single value used for all rows.
func (s *SoftmaxCrossEntropy) Backward(weights []float32) *tensor.Tensor {
	b, c := s.prob.Shape[0], s.prob.Shape[1]
	if len(weights) != b && len(weights) != 1 {
		shapePanic("SoftmaxCrossEntropy.Backward", "%d weights for %d rows", len(weights), b)
	}
	s.dx = tensor.Ensure(s.dx, b, c)
	for i := 0; i < b; i++ {
		w := weights[0]
		if len(weights) == b {
			w = weights[i]
		}
		p := s.prob.Data[i*c : (i+1)*c]
		d := s.dx.Data[i*c : (i+1)*c]
		for j, v := range p {
			d[j] = w * v
		}
		d[s.labels[i]] -= w
	}
	return s.dx
}

// Probabilities returns the softmax of the last Forward ([B, C]).
func (s *SoftmaxCrossEntropy) Probabilities() *tensor.Tensor { return s.prob }
