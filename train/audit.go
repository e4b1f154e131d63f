package train

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"

	"dptrain/audit"
	"dptrain/data"
	"dptrain/dpsgd"
	"dptrain/internal/fault"
	"dptrain/internal/seed"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// AuditConfig makes a run a privacy audit (dptrain audit, or audit: in a
// config): the one-run audit of Steinke, Nasr & Jagielski 2023. m canaries
// are each made a member of the training set with probability ½; the run
// trains once, with the members counted in N (so in q, σ and the ledger)
// and sampled like every example; at the end each canary's score says how
// much it showed in what was released, and package audit turns the scores
// of members and non-members into a lower bound on ε. The audited model
// is not a production model: it trained on the canaries too.
type AuditConfig struct {
	// Kind is the canaries' kind: white (the default: gradient canaries,
	// scored on every step's released noisy sum) or black (training
	// examples set aside and mislabelled, scored by the final model's loss
	// on them).
	Kind string `yaml:"kind" json:"kind"`
	// Canaries is m (default 1000).
	Canaries int `yaml:"canaries" json:"canaries"`
	// Significance is 1 − the bound's confidence (default 0.05).
	Significance float64 `yaml:"significance" json:"significance"`
	// FailIfExceeded makes the run fail (after writing audit.json) when a
	// bound's ε_lower exceeds the ε the ledger claims: the mechanism that
	// ran is not the one accounted.
	FailIfExceeded bool `yaml:"fail_if_exceeded" json:"fail_if_exceeded"`
}

const (
	defaultCanaries = 1000
	// canaryAmplitude is a gradient canary's norm before clipping, in
	// units of the clip norm C: above 1, so clipping must scale it down to
	// C (a mechanism that does not clip shows it 4 times larger).
	canaryAmplitude = 4
	auditPurpose    = seed.Purpose(0x6175646974) // "audit": membership and coordinates
)

func (a *AuditConfig) withDefaults() {
	if a.Kind == "" {
		a.Kind = "white"
	}
	if a.Canaries == 0 {
		a.Canaries = defaultCanaries
	}
	if a.Significance == 0 {
		a.Significance = 0.05
	}
}

func (c *Config) validateAudit(bad badFunc) {
	a := c.Audit
	if a == nil {
		return
	}
	switch a.Kind {
	case "", "white":
	case "black":
		if c.FeatureCache != "" {
			bad("audit.kind: black with feature_cache: the input canaries are images, and the cache holds the training set's features; audit without the cache")
		}
	default:
		bad("audit.kind: %q, want white (gradient canaries) or black (mislabelled input canaries)", a.Kind)
	}
	if c.FeatureNorm == "data" {
		bad("audit with feature_norm: data: the private data-normalisation release is not audited; use feature_norm: group")
	}
	if a.Canaries < 0 || a.Canaries == 1 {
		bad("audit.canaries: %d, want at least 2 (default %d)", a.Canaries, defaultCanaries)
	}
	if !(a.Significance >= 0 && a.Significance < 1) {
		bad("audit.significance: %v, want a level in (0, 1) (default 0.05)", a.Significance)
	}
	if !c.IsPrivate() {
		bad("audit: the run is not private (private: false): there is no guarantee to audit")
	}
	if s, _ := data.ParseSampling(c.Sampling); s == data.SamplingShuffle {
		bad("audit: sampling: shuffle is not covered by the accountant; the audit needs poisson sampling")
	}
}

// auditRun is the state of an audited run's white-box canaries. Canary k is
// a Dirac gradient: canaryAmplitude·C on one coordinate (coord[k]) of a
// trained weight, 0 elsewhere, distinct coordinates for distinct canaries.
// The members are training examples nData … nData+len(members)−1 of the
// sampler; when a step's batch holds one, its gradient is clipped like
// every example's (dpsgd.ClipFactors) and added to the clipped sum before
// the noise. A canary's score (score) is the log-likelihood ratio of what
// each step released at its coordinate, less what the real examples put
// there (an adversary may know every example but the canaries): the noise,
// plus C for every step that sampled a member.
type auditRun struct {
	cfg      AuditConfig
	nData    int
	member   []bool // per canary
	members  []int  // sampler slot nData+j → canary members[j]
	coords   []auditCoord
	scores   []float64 // per canary: the summed log-likelihood ratio (black-box: −loss)
	before   []float64 // per canary: the clipped sum there before canaries
	idx      []int
	coef     []float32
	sq       []float64
	sampler  data.Sampler // over nData + len(members)
	clip     float64
	expected float64 // B
	q, sigma float64 // the run's configured sampling rate and noise multiplier

	black *blackCanaries // black-box: the input canaries (else gradient canaries)
}

type auditCoord struct{ param, elem int }

// gradientCanaries reports whether the run is audited with white-box
// gradient canaries (false for no audit and for black-box canaries).
func (a *auditRun) gradientCanaries() bool { return a != nil && a.black == nil }

// newAuditRun draws the canaries' membership (independently, probability
// ½ each) for a training set of nData examples.
func newAuditRun(cfg AuditConfig, nData int, runSeed uint64) *auditRun {
	a := &auditRun{cfg: cfg, nData: nData, member: make([]bool, cfg.Canaries), scores: make([]float64, cfg.Canaries), before: make([]float64, cfg.Canaries)}
	r := rand.New(rand.NewPCG(seed.Derive(runSeed, auditPurpose), 1))
	for k := range a.member {
		if r.Uint64()&1 == 1 {
			a.member[k] = true
			a.members = append(a.members, k)
		}
	}
	return a
}

// placeCanaries gives each canary a distinct coordinate of a trained
// weight (a parameter with weight decay: not a bias or a normalisation's
// affine), uniformly at random.
func (a *auditRun) placeCanaries(t trainable, runSeed uint64) error {
	total := 0
	for i, n := range t.sizes {
		if t.decay[i] {
			total += n
		}
	}
	m := len(a.member)
	if total < m {
		return fmt.Errorf("audit.canaries: %d canaries need as many coordinates of trained weights, and the model trains %d", m, total)
	}
	r := rand.New(rand.NewPCG(seed.Derive(runSeed, auditPurpose), 2))
	seen := make(map[int]bool, m)
	a.coords = a.coords[:0]
	for len(a.coords) < m {
		flat := r.IntN(total)
		if seen[flat] {
			continue
		}
		seen[flat] = true
		f := flat
		for i, n := range t.sizes {
			if !t.decay[i] {
				continue
			}
			if f < n {
				a.coords = append(a.coords, auditCoord{i, f})
				break
			}
			f -= n
		}
	}
	return nil
}

// loaderSampler hands the loader the real examples of each batch (the
// canary slots, past nData, have no image).
type loaderSampler struct {
	data.Sampler
	nData int
}

func (s loaderSampler) Sample(step int64, dst []int) []int {
	dst = s.Sampler.Sample(step, dst)
	out := dst[:0]
	for _, i := range dst {
		if i < s.nData {
			out = append(out, i)
		}
	}
	return out
}

// insert adds the clipped gradients of the member canaries that step's
// batch sampled to the clipped sum grads (before the noise), after noting
// the sum at every canary's coordinate.
func (a *auditRun) insert(step int64, grads [][]float32) {
	for k, c := range a.coords {
		a.before[k] = float64(grads[c.param][c.elem])
	}
	a.idx = a.sampler.Sample(step, a.idx)
	var in []int
	if fault.Injected.CanariesEveryStep {
		in = a.members // a broken sampler, for the audit's tests only
	} else {
		for _, i := range a.idx {
			if i >= a.nData {
				in = append(in, a.members[i-a.nData])
			}
		}
	}
	if len(in) == 0 {
		return
	}
	amp := canaryAmplitude * a.clip
	a.sq = a.sq[:0]
	for range in {
		a.sq = append(a.sq, amp*amp)
	}
	if cap(a.coef) < len(in) {
		a.coef = make([]float32, len(in))
	}
	a.coef = a.coef[:len(in)]
	dpsgd.ClipFactors(a.coef, a.sq, a.clip)
	for j, k := range in {
		c := a.coords[k]
		grads[c.param][c.elem] += a.coef[j] * float32(amp)
	}
}

// score adds to each canary's score the log-likelihood ratio of what the
// step released at its coordinate: x, the noisy sum (grads·B) less the real
// examples' part noted by insert, in units of C, is N(0, σ²) for a
// non-member and the mixture (1−q)·N(0, σ²) + q·N(1, σ²) for a member
// (sampled with probability q, clipped to C), so the ratio is
// 1 − q + q·exp((x − ½)/σ²), with the run's configured q and σ (public:
// what an adversary knows). Summed over steps it is the Neyman–Pearson score of
// the whole run for one canary: stronger than the sum of x when σ is small
// and a canary shows in few steps.
func (a *auditRun) score(grads [][]float32) {
	lq, l1q := math.Log(a.q), math.Log1p(-a.q)
	inv := 1 / (a.sigma * a.sigma)
	for k, c := range a.coords {
		x := (float64(grads[c.param][c.elem])*a.expected - a.before[k]) / a.clip
		z := lq + (x-0.5)*inv
		// log(e^l1q + e^z) without overflow
		hi, lo := max(l1q, z), min(l1q, z)
		a.scores[k] += hi + math.Log1p(math.Exp(lo-hi))
	}
}

// AuditResult is audit.json: the audit's counts and bounds next to the
// ε the ledger claims.
type AuditResult struct {
	Kind       string  `json:"kind"`
	ClaimedEps float64 `json:"claimed_epsilon"`
	// Exceeded: the one-run bound (valid for any (ε, δ)-DP mechanism) is
	// above the claimed ε. ExceededFDP: the f-DP bound is, which refutes
	// the claim only if the privacy curve is Gaussian-shaped (a warning).
	Exceeded        bool      `json:"exceeded"`
	ExceededFDP     bool      `json:"exceeded_fdp"`
	NoiseMultiplier float64   `json:"noise_multiplier"`
	SamplingRate    float64   `json:"sampling_rate"`
	Steps           int64     `json:"steps"`
	Accountant      string    `json:"accountant"`
	FaultInjected   bool      `json:"fault_injected,omitempty"`
	audit.Result              // m, m_in, m_out, δ, confidence, both bounds and their guesses
	MemberScores    []float64 `json:"member_scores,omitempty"`
	NonMemberScores []float64 `json:"non_member_scores,omitempty"`
	Note            string    `json:"note"`

	failIfExceeded bool
}

// ErrAuditExceeded is returned (wrapped) by an audited run with
// fail_if_exceeded whose ε_lower exceeds the claimed ε.
var ErrAuditExceeded = errors.New("the audit's lower bound on ε exceeds the ε the ledger claims: the mechanism that ran is not the one accounted")

// finish computes the bounds and writes audit.json and audit.png to out.
func (a *auditRun) finish(out string, claimed, delta float64, steps int64, accountant string, logf func(string, ...any)) (*AuditResult, error) {
	var in, outScores []float64
	for k, s := range a.scores {
		if a.member[k] {
			in = append(in, s)
		} else {
			outScores = append(outScores, s)
		}
	}
	res, err := audit.EpsilonFromScores(in, outScores, audit.Options{Delta: delta, Significance: a.cfg.Significance})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	ar := &AuditResult{Kind: a.cfg.Kind, ClaimedEps: claimed, FaultInjected: fault.Active(), Result: res, MemberScores: in, NonMemberScores: outScores,
		NoiseMultiplier: a.sigma, SamplingRate: a.q, Steps: steps, Accountant: accountant,
		Note: a.note()}
	ar.Exceeded, ar.ExceededFDP = res.EpsilonOneRun > claimed, res.EpsilonFDP > claimed
	ar.failIfExceeded = a.cfg.FailIfExceeded
	if err := writeJSON(filepath.Join(out, "audit.json"), ar); err != nil {
		return nil, err
	}
	if err := writeAuditPlot(filepath.Join(out, "audit.png"), in, outScores, a.black != nil); err != nil {
		logf("warning: audit plot: %v", err)
	}
	return ar, nil
}

func (a *auditRun) note() string {
	if a.black != nil {
		return "black-box input canaries: training examples set aside, each with a wrong label drawn uniformly from the other classes; the members trained with it, the others never; each canary's score is minus the final model's loss on it under its wrong label. The audited model trained with the member canaries: it is not a production model."
	}
	return "white-box gradient canaries (a Dirac gradient of norm 4C before clipping on one coordinate of a trained weight each); each canary's score is the log-likelihood ratio, summed over steps, of 'member' (sampled with probability q, contributing C) against 'not a member' for the released noisy gradient sum at its coordinate less the real examples' part, with the run's configured q and σ. The canaries' norm is known (4C), so they test the clipping, the sampling, the noise and the accounting, not the per-example norm computation of real examples (the nn reference tests cover that). The audited model trained with the member canaries: it is not a production model."
}

// auditSentence is the report's sentence on the audit.
func auditSentence(a *AuditResult) string {
	kind := "white-box gradient canaries"
	if a.Kind == "black" {
		kind = "black-box input canaries (mislabelled training images, scored by the final model's loss)"
	}
	s := fmt.Sprintf("A one-run privacy audit with %d %s (%d of them trained on) found ε ≥ %.3g (Steinke et al. 2023) and ε ≥ %.3g (its f-DP refinement, which assumes a Gaussian privacy curve) at %.0f%% confidence, against the ε = %.3g the ledger claims (δ = %.3g): ",
		a.Canaries, kind, a.InCanaries, a.EpsilonOneRun, a.EpsilonFDP, 100*a.Confidence, a.ClaimedEps, a.Delta)
	switch {
	case a.Exceeded:
		s += "**the audit exceeds the claim: the mechanism that ran is not the one accounted.**"
	case a.ExceededFDP:
		s += "the one-run bound is consistent with the claim; the f-DP bound exceeds it, which refutes the claim only if the mechanism's privacy curve is Gaussian (a warning, not a failure)."
	default:
		s += "consistent with the claim (an audit bounds ε from below; it cannot confirm the claim, only refute it)."
	}
	if a.FaultInjected {
		s += " (A fault was injected into the mechanism on purpose: a test of the audit.)"
	}
	return s + " The audited model trained on the canaries too: it is not the production model."
}

// writeAuditPlot draws audit.png: histograms of the member and
// non-member canaries' scores on common bins.
func writeAuditPlot(path string, in, out []float64, black bool) error {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range append(append([]float64(nil), in...), out...) {
		if !math.IsInf(s, 0) && !math.IsNaN(s) {
			lo, hi = min(lo, s), max(hi, s)
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1 // no finite score
	}
	if !(hi > lo) {
		lo, hi = lo-0.5, hi+0.5
	}
	const bins = 40
	w := (hi - lo) / bins
	p := plot.New()
	p.Title.Text = "audit: canary scores"
	p.X.Label.Text = "score (log-likelihood ratio of the released sums at the canary's coordinate)"
	if black {
		p.X.Label.Text = "score (minus the final model's loss on the mislabelled canary)"
	}
	p.Y.Label.Text = "canaries"
	for i, set := range []struct {
		name string
		s    []float64
	}{{"trained on (members)", in}, {"not trained on", out}} {
		var v plotter.Values
		for _, s := range set.s {
			if !math.IsInf(s, 0) && !math.IsNaN(s) {
				v = append(v, s)
			}
		}
		if len(v) == 0 {
			continue
		}
		h, err := plotter.NewHist(v, bins)
		if err != nil {
			return err
		}
		// Common bins: NewHist bins on the set's own range; rebuild them.
		counts := make([]float64, bins)
		for _, s := range v {
			counts[min(int((s-lo)/w), bins-1)]++
		}
		h.Bins = h.Bins[:0]
		for b, c := range counts {
			h.Bins = append(h.Bins, plotter.HistogramBin{Min: lo + float64(b)*w, Max: lo + float64(b+1)*w, Weight: c})
		}
		h.FillColor = nil
		h.LineStyle.Color = plotutil.Color(i)
		h.LineStyle.Width = vg.Points(1.5)
		p.Add(h)
		p.Legend.Add(set.name, h)
	}
	p.Legend.Top = true
	return savePNG(p, path)
}
