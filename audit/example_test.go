package audit_test

import (
	"fmt"
	"math"

	"dptrain/audit"
)

// An attacker guessed "in" for 300 of 1000 canaries and was right 280
// times.
func ExampleOneRunEpsilon() {
	g := audit.Guesses{Canaries: 1000, Guesses: 300, Correct: 280}
	eps, err := audit.OneRunEpsilon(g, 1e-5, 0.05)
	if err != nil {
		panic(err)
	}
	epsFDP, err := audit.OneRunEpsilonFDP(g, 1e-5, 0.05)
	if err != nil {
		panic(err)
	}
	fmt.Printf("(ε, δ)-DP: ε ≥ %.3f at 95%% confidence\n", eps)
	fmt.Printf("Gaussian f-DP: ε ≥ %.3f at 95%% confidence\n", epsFDP)
	// Output:
	// (ε, δ)-DP: ε ≥ 2.247 at 95% confidence
	// Gaussian f-DP: ε ≥ 3.776 at 95% confidence
}

// Auditing from attack scores: higher means "trained on". Here the
// scores are the quantiles of a logistic distribution, shifted up by 2 for
// the canaries that were trained on.
func ExampleEpsilonFromScores() {
	const n = 2000
	in, out := make([]float64, n), make([]float64, n)
	for i := range in {
		p := (float64(i) + 0.5) / n
		out[i] = math.Log(p / (1 - p))
		in[i] = out[i] + 2
	}
	res, err := audit.EpsilonFromScores(in, out, audit.Options{Delta: 1e-5, Significance: 0.05})
	if err != nil {
		panic(err)
	}
	fmt.Printf("m = %d canaries, %d thresholds tried\n", res.Canaries, res.Thresholds)
	fmt.Printf("one-run: ε ≥ %.2f (%d of %d guesses right)\n", res.EpsilonOneRun, res.Correct, res.Guesses)
	fmt.Printf("f-DP:    ε ≥ %.2f (%d of %d guesses right)\n", res.EpsilonFDP, res.CorrectFDP, res.GuessesFDP)
	// Output:
	// m = 4000 canaries, 136 thresholds tried
	// one-run: ε ≥ 0.69 (1141 of 1445 guesses right)
	// f-DP:    ε ≥ 1.51 (445 of 519 guesses right)
}
