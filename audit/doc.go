// Package audit computes empirical lower bounds on the ε of (ε, δ)-DP from
// a single training run, by the one-run privacy audit: m canaries are each
// included in the training set independently with probability ½, and after
// training an attacker scores every canary and guesses "in" for some of
// them. If the attacker is right too often, the mechanism cannot have been
// (ε, δ)-DP for small ε.
//
// Two bounds are provided, both as JAX Privacy 2.x computes them
// (auditing.CanaryScoreAuditor.epsilon_one_run and epsilon_one_run_fdp):
//
//   - [OneRunEpsilon]: Steinke, Nasr & Jagielski, "Privacy Auditing with One
//     (1) Training Run", NeurIPS 2023, arXiv:2305.08846. Under (ε, δ)-DP
//     the number of correct guesses out of r is stochastically at most
//     Bin(r, e^ε/(1+e^ε)) plus a δ-term; [OneRunPValue] is the resulting
//     p-value, and the bound is the largest ε it rejects.
//   - [OneRunEpsilonFDP]: Mahloujifar, Melis & Chaudhuri, "Auditing
//     f-Differential Privacy in One Run", ICML 2025, arXiv:2410.22235,
//     instantiated with Gaussian tradeoff curves: for each ε the claim
//     tested is "the mechanism is μ-GDP", with μ the Gaussian-DP parameter
//     that is exactly (ε, δ)-DP, δ(ε) = Φ(−ε/μ+μ/2) − e^ε Φ(−ε/μ−μ/2).
//     It is much tighter for mechanisms whose privacy curve is Gaussian,
//     such as DP-SGD (about twice the first bound on the reference data),
//     but it bounds ε only under that assumption on the curve's shape.
//
// [EpsilonFromScores] runs the whole audit from the attack scores of the
// in- and out-canaries: it tries every threshold on the Pareto frontier of
// the ROC curve (guess "in" for scores at or above it), divides the
// significance among them (Bonferroni), and reports both bounds with the
// guess sets that achieved them in a [Result].
//
// # What the bound means
//
// ε_lower is a statistical lower bound at confidence 1 − significance: if
// the training run were (ε, δ)-DP for some ε < ε_lower, an outcome as
// extreme as the one observed would have had probability below the
// significance level. It says nothing about how private the run is (an
// ε_lower of 0 is no evidence of privacy) and it never exceeds what m
// canaries can show: even a perfect attack guessing all m canaries right
// certifies only about ln(m / ln(1/significance)) with the first bound —
// 3.5 for m = 100, 5.8 for m = 1000, 8.1 for m = 10⁴ at significance 0.05
// and δ = 10⁻⁶ — and 9.1, 13.5 and 17.6 with the second. An audit is a
// check of an implementation against its accountant (ε_lower above the
// accounted ε means a bug), not a measure of its privacy.
//
// # Numerics
//
// Binomial probabilities come from the mode outwards by the ratio
// recurrence, normalised by their computed sum: about (number of terms)·2⁻⁵³
// relative error, ~1e-11 for m up to 1e5 (the tests compare the p-value
// with exact math/big sums for r up to 1500). ε is found by doubling a bracket from ε = 1 and bisecting it to
// [EpsTolerance] (1e-9 absolute; JAX uses brentq to 1e-6), reporting the
// lower end, so a bound never exceeds the exact value by more than that.
package audit
