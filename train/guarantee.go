package train

import (
	"fmt"

	"dptrain/dpsgd"
)

// Guarantee is a private run's privacy statement in the mode the run
// actually used: one source for report.md, summary.json and the command
// line, so that none of them states ε without its conditions.
type Guarantee struct {
	// Statement is the (ε, δ)-DP claim in words.
	Statement string `json:"statement"`
	// Conditions are what the statement further relies on in this run's
	// configuration; empty for secure mode, δ < 1/N and no initial weights.
	// (It always covers only the outputs in Covers.)
	Conditions []string `json:"conditions,omitempty"`
	// Covers and NotCovered list the outputs of the run the statement does
	// and does not protect.
	Covers     []string `json:"covers"`
	NotCovered []string `json:"not_covered"`
}

// guarantee builds the statement for a finished private run of c.
func guarantee(c *Config, s *Summary) *Guarantee {
	g := &Guarantee{
		Statement: fmt.Sprintf("The trained model weights (final, intermediate and averaged) satisfy (ε = %.4g, δ = %g)-differential privacy with respect to one training example: adding or removing any single example of the %d training examples changes the probability of any outcome of training by at most a factor e^ε, except with probability δ.", s.Epsilon, s.Delta, s.TrainExamples),
	}
	if c.Noise == string(dpsgd.ModeSeeded) {
		g.Conditions = append(g.Conditions, fmt.Sprintf("The seed stays secret (seed: %d, in the config, config.yaml, summary.json and the checkpoints): with noise: seeded the noise, the batches and the augmentations are derived from it, so anyone who knows it can recompute and remove the noise; seeded noise is also not hardened against floating-point attacks. Train with noise: secure (the default) for a release.", c.Seed))
	}
	if s.Delta >= 1/float64(s.TrainExamples) {
		g.Conditions = append(g.Conditions, fmt.Sprintf("δ = %g ≥ 1/N = %.3g (allow_large_delta: true): such a δ also allows a mechanism that publishes one training example outright with probability δ.", s.Delta, 1/float64(s.TrainExamples)))
	}
	if c.Init != "" {
		g.Conditions = append(g.Conditions, fmt.Sprintf("The initial weights (%s) are public, or the data behind them is accounted for separately: the guarantee covers this run's training data only.", c.Init))
	}
	g.Covers = []string{
		"the model weights in every checkpoint (final, intermediate and the moving average) and the optimizer state: post-processing of the noisy releases",
		"evaluations of the trained model (test accuracy in summary.json, metrics.jsonl eval lines, accuracy.png), with respect to the training data",
		"ε, δ and the privacy ledger, which do not depend on the data",
	}
	if s.PriorEvent != "" {
		g.Covers = append(g.Covers, "the per-channel data-normalisation statistics in the model (a Gaussian release composed in the ledger)")
	}
	g.NotCovered = []string{
		"metrics.jsonl step lines, the progress log and loss.png: per-step training loss, realised batch sizes, clipping statistics and timings, computed from the private data without noise",
		"wall_seconds in summary.json and the checkpoints' state.json (roughly proportional to the realised batch sizes)",
		"privacy-journal.log: its content digest of the training set lets whoever holds it test exactly whether a candidate data set is the training set; and the checkpoints' state.json and config.yaml",
		"whether the run stopped early on a non-finite loss or update or on a bad image",
		"aggregate properties of the data set: its size N and its class list (public by convention, as in q = B/N)",
		"the test set, used for evaluation without privacy",
		"other runs on the same data, including one restarted in a new --out: their privacy costs add to this run's",
	}
	return g
}
