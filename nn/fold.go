package nn

import "math"

// FoldBatchNorm folds every frozen-statistics BatchNorm that directly
// follows a convolution into it, where both are entirely frozen and the
// convolution has no weight standardisation: with a_o = γ_o/√(σ²_o + ε),
// W'_o = a_o·W_o and b'_o = a_o·(b_o − μ_o) + β_o (a bias is added when the
// convolution had none), and the BatchNorm leaves the model. The model
// computes the same function (up to float32 rounding) with one pass less
// per folded pair; its parameters change (the BatchNorms' are gone), so
// fold a copy used for inference or feature extraction, not a model whose
// checkpoints must keep the original names. It returns the number of
// BatchNorms folded.
func FoldBatchNorm(m *Model) int {
	n := 0
	var fold func(ls []Layer) []Layer
	fold = func(ls []Layer) []Layer {
		out := ls[:0]
		for i := 0; i < len(ls); i++ {
			switch v := ls[i].(type) {
			case *Sequential:
				v.Layers = fold(v.Layers)
			case *Residual:
				v.Pre, v.Main, v.Shortcut = fold(v.Pre), fold(v.Main), fold(v.Shortcut)
			case *Conv2d:
				if i+1 < len(ls) {
					if bn, ok := ls[i+1].(*BatchNorm2d); ok && foldable(v, bn) {
						foldInto(v, bn)
						out = append(out, v)
						i++ // the BatchNorm is gone
						n++
						continue
					}
				}
			}
			out = append(out, ls[i])
		}
		return out
	}
	m.Layers = fold(m.Layers)
	m.params = nil
	return n
}

func foldable(c *Conv2d, bn *BatchNorm2d) bool {
	return !c.WS && bn.UseRunningStats && bn.C == c.Cout && !trainable(c) && !trainable(bn)
}

func foldInto(c *Conv2d, bn *BatchNorm2d) {
	if c.B == nil {
		c.B = newParam(c.W.Name[:len(c.W.Name)-len("weight")]+"bias", true, c.Cout)
		c.B.Frozen = true
	}
	d := c.d()
	for o := 0; o < c.Cout; o++ {
		a := 1 / math.Sqrt(float64(bn.Var.Value[o])+float64(bn.Eps))
		shift := 0.0
		if bn.Gamma != nil {
			a *= float64(bn.Gamma.Value[o])
			shift = float64(bn.Beta.Value[o])
		}
		w := c.W.Value[o*d : (o+1)*d]
		for j := range w {
			w[j] = float32(float64(w[j]) * a)
		}
		c.B.Value[o] = float32(a*(float64(c.B.Value[o])-float64(bn.Mean.Value[o])) + shift)
	}
	c.wEff = nil
}
