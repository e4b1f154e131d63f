package train

import (
	"fmt"
	"math"
	"strings"
)

// writeReport writes report.md: the result and the privacy guarantee in
// words.
func writeReport(path string, s *Summary, r *run) error {
	c := &s.Config
	var b strings.Builder
	fmt.Fprintf(&b, "# dptrain run report\n\n")
	fmt.Fprintf(&b, "Model **%s** (%d parameters, %d trained) on `%s` (%d training examples), %d steps (%.3g epochs), %.0f s wall time.\n\n",
		c.Model, s.Parameters, s.Trainable, c.TrainData, s.TrainExamples, s.Steps, s.Epochs, s.WallSeconds)
	if !math.IsNaN(s.TestAccuracy) {
		fmt.Fprintf(&b, "Test accuracy on `%s` (%d examples): **%.2f%%** top-1, %.2f%% top-5, loss %.4f", c.TestData, s.TestExamples, 100*s.TestAccuracy, 100*s.TestTop5, s.TestLoss)
		if c.EMADecay > 0 {
			fmt.Fprintf(&b, " (with the exponential moving average of the weights, decay %g)", c.EMADecay)
		}
		b.WriteString(".\n\n")
	}
	b.WriteString("## Privacy guarantee\n\n")
	if !s.Private {
		b.WriteString("**None.** This run trained without differential privacy (`private: false`): the model may memorise and reveal its training examples. Use it only on data that may be public.\n")
		return writeFileAtomic(path, []byte(b.String()))
	}
	fmt.Fprintf(&b, "The trained model (and every intermediate model and checkpoint) satisfies **(ε = %.4g, δ = %g)-differential privacy** with respect to **one training example**: adding or removing any single example of the %d in `%s` changes the probability of any outcome of training by at most a factor e^ε, except with probability δ.\n\n",
		s.Epsilon, s.Delta, s.TrainExamples, c.TrainData)
	fmt.Fprintf(&b, "- Mechanism: DP-SGD. Each example's gradient (over all %d trained parameters together", s.Trainable)
	if c.PerLayerClipping {
		b.WriteString(", clipped per layer with budgets C/√L")
	}
	if c.AugMultiplicity > 1 {
		fmt.Fprintf(&b, "; averaged over its %d augmentations", c.AugMultiplicity)
	}
	fmt.Fprintf(&b, ") is clipped to norm C = %g; the sum over a logical batch receives Gaussian noise of standard deviation σ·C with noise multiplier σ = %.6g, once per step, and is divided by the expected batch size %d.\n", c.ClipNorm, s.NoiseMultiplier, c.BatchSize)
	fmt.Fprintf(&b, "- Sampling assumption: every step draws its batch by **Poisson sampling** — each example joins independently with probability q = %.6g — so batch sizes vary. The guarantee holds for this sampling (%s); it does not hold if batches were formed differently.\n", s.SamplingRate, s.Sampling)
	fmt.Fprintf(&b, "- Accounting: %d steps composed with the **%s** accountant", s.Steps, strings.ToUpper(s.Accountant))
	if s.Accountant == "pld" {
		fmt.Fprintf(&b, " (privacy loss distributions, pessimistic discretisation: an upper bound); the RDP accountant gives ε = %.4g (order %g) for comparison with published work.\n", s.EpsilonRDP, s.RDPOrder)
	} else {
		fmt.Fprintf(&b, " (Rényi DP with the improved conversion to (ε, δ), optimal order %g).\n", s.RDPOrder)
	}
	if c.TargetEpsilon > 0 {
		fmt.Fprintf(&b, "- Budget: σ was calibrated so that the run stays within ε = %g; training stops before exceeding it.\n", c.TargetEpsilon)
	}
	fmt.Fprintf(&b, "- Noise: %s mode.", s.NoiseMode)
	if s.NoiseMode == "seeded" {
		b.WriteString(" The noise and the batch sampling come from a seeded generator so that runs are reproducible; anyone who knows the seed can remove the noise, so keep the seed secret or use `noise: secure` for a release.\n")
	} else {
		b.WriteString(" Noise and sampling come from a cryptographically secure source; the Gaussian sampler is hardened against floating-point attacks.\n")
	}
	if c.Init != "" {
		fmt.Fprintf(&b, "- The run started from `%s`. The guarantee covers the training data of this run only; the data behind the initial weights must be public (or accounted for separately).\n", c.Init)
	}
	b.WriteString("- What is not protected: aggregate properties of the data set, the data set size and class list, and the test set (used for evaluation without privacy).\n")
	_ = r
	return writeFileAtomic(path, []byte(b.String()))
}
