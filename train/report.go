package train

import (
	"fmt"
	"math"
	"strings"

	"dptrain/checkpoint"
	"dptrain/dpsgd"
)

// writeReport writes report.md: the result and the privacy guarantee in
// words.
func writeReport(path string, s *Summary) error {
	c := &s.Config
	var b strings.Builder
	fmt.Fprintf(&b, "# dptrain run report\n\n")
	fmt.Fprintf(&b, "Model **%s** (%d parameters, %d trained) on `%s` (%d training examples), %d steps (%.3g epochs), %.0f s wall time.\n\n",
		c.Model, s.Parameters, s.Trainable, c.TrainData, s.TrainExamples, s.Steps, s.Epochs, s.WallSeconds)
	if !math.IsNaN(float64(s.TestAccuracy)) {
		fmt.Fprintf(&b, "Test accuracy on `%s` (%d examples): **%.2f%%** top-1, %.2f%% top-5, loss %.4f", c.TestData, s.TestExamples, 100*s.TestAccuracy, 100*s.TestTop5, s.TestLoss)
		if c.EMADecay > 0 {
			fmt.Fprintf(&b, " (with the exponential moving average of the weights, decay %g)", c.EMADecay)
		}
		b.WriteString(".\n\n")
	}
	b.WriteString("## Privacy guarantee\n\n")
	if !s.Private {
		b.WriteString("**None.** This run trained without differential privacy (`private: false`): the model may memorise and reveal its training examples. Use it only on data that may be public.\n")
		return checkpoint.WriteFileAtomic(path, []byte(b.String()))
	}
	g := s.Guarantee
	fmt.Fprintf(&b, "%s\n\n", g.Statement)
	if s.Audit != nil {
		fmt.Fprintf(&b, "**Audit.** %s See audit.json and audit.png.\n\n", auditSentence(s.Audit))
	}
	if len(g.Conditions) == 0 {
		b.WriteString("It holds with no condition on the configuration (secure noise, δ < 1/N, no initial weights from other data). Like every differential-privacy guarantee it covers only the outputs listed as covered below, and treats the data set's size and class list as public.\n\n")
	} else {
		b.WriteString("**It holds only if:**\n\n")
		for _, cond := range g.Conditions {
			fmt.Fprintf(&b, "- %s\n", cond)
		}
		b.WriteString("\n")
	}
	if c.MaxTrainExamples > 0 {
		fmt.Fprintf(&b, "The training set is the first %d examples of `%s` (max_train_examples); the guarantee is with respect to that set.\n\n", s.TrainExamples, c.TrainData)
	}
	fmt.Fprintf(&b, "- Mechanism: DP-SGD. Each example's gradient (over all %d trained parameters together", s.Trainable)
	if c.PerLayerClipping {
		b.WriteString(", clipped per layer with budgets C/√L")
	}
	if c.AugMultiplicity > 1 {
		fmt.Fprintf(&b, "; averaged over its %d augmentations", c.AugMultiplicity)
	}
	fmt.Fprintf(&b, ") is clipped to norm C = %g; the sum over a logical batch receives Gaussian noise of standard deviation σ·C with noise multiplier σ = %.6g, once per step, and is divided by the expected batch size %d.\n", c.ClipNorm, s.NoiseMultiplier, c.BatchSize)
	fmt.Fprintf(&b, "- Sampling assumption: every step draws its batch by **Poisson sampling** — each example joins independently with probability q = %.6g — so batch sizes vary. The guarantee holds for this sampling (%s); it does not hold if batches were formed differently.\n", s.SamplingRate, s.Sampling)
	released := fmt.Sprintf("%d steps", s.Steps)
	if s.LostSteps > 0 {
		released = fmt.Sprintf("%d steps (and %d more taken before interruptions and lost)", s.Steps, s.LostSteps)
	}
	if s.PriorEvent != "" { // the data-normalisation release, the ledger's first event
		fmt.Fprintf(&b, "- Data normalisation: before training, the per-channel means of the features and of their squares (each example's vector clipped to L2 norm C_μ = %g and C_s = %g) were summed over the training set and released with Gaussian noise of standard deviation σ_n·C_μ and σ_n·C_s, σ_n = %g: two Gaussian mechanisms, composed with the DP-SGD steps below (the normalisation layer of the model uses them).", c.DataNormMeanClip, c.DataNormSqClip, c.DataNormNoiseMultiplier)
		if s.PriorReleases > 1 {
			fmt.Fprintf(&b, " It was released %d times (runs interrupted before their first checkpoint), each counted.", s.PriorReleases)
		}
		b.WriteString("\n")
		released = "the release and " + released
	}
	fmt.Fprintf(&b, "- Accounting: %s composed with the **%s** accountant", released, strings.ToUpper(s.Accountant))
	if s.Accountant == "pld" {
		fmt.Fprintf(&b, " (privacy loss distributions, pessimistic discretisation: an upper bound); the RDP accountant gives ε = %.4g (order %g) for comparison with published work.\n", s.EpsilonRDP, s.RDPOrder)
	} else {
		fmt.Fprintf(&b, " (Rényi DP with the improved conversion to (ε, δ), optimal order %g).\n", s.RDPOrder)
	}
	if c.TargetEpsilon > 0 {
		fmt.Fprintf(&b, "- Budget: σ was calibrated so that the run stays within ε = %g; training stops before exceeding it.\n", c.TargetEpsilon)
	}
	fmt.Fprintf(&b, "- Noise: %s mode.", s.NoiseMode)
	if s.NoiseMode == string(dpsgd.ModeSeeded) {
		b.WriteString(" Noise, batch sampling and augmentation come from generators derived from the configured seed, so that runs are reproducible bit for bit: anyone who knows the seed can recompute the noise and the batches and remove the protection.")
	} else {
		b.WriteString(" The noise comes from a cryptographically secure generator (ChaCha8 keyed with fresh bits from the operating system for every 65,536 values) with a sampler hardened against floating-point attacks; batch membership and augmentations come from ChaCha8 keyed by 256 secret bits drawn from the operating system in every process and never stored. A step re-run after a crash draws a fresh batch and fresh noise.")
	}
	if s.LostSteps > 0 {
		fmt.Fprintf(&b, " %d steps taken before an interruption and lost were counted as spent.", s.LostSteps)
	}
	b.WriteString("\n")
	b.WriteString("\n## What the guarantee covers\n\n")
	for _, x := range g.Covers {
		fmt.Fprintf(&b, "- %s\n", x)
	}
	b.WriteString("\n**Not covered** (computed from the private data without noise, or outside the model; keep them private):\n\n")
	for _, x := range g.NotCovered {
		fmt.Fprintf(&b, "- %s\n", x)
	}
	return checkpoint.WriteFileAtomic(path, []byte(b.String()))
}
