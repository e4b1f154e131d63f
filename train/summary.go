package train

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"

	"dptrain/accounting"
	"dptrain/checkpoint"
	"dptrain/data"
	"dptrain/dpsgd"
)

// Summary is summary.json: the result of a run and what it spent. Numbers
// that may be unknown (no test set, a public run) are JSONFloat: NaN, and
// null in the file.
type Summary struct {
	TestAccuracy    JSONFloat `json:"test_accuracy"`
	TestTop5        JSONFloat `json:"test_top5"`
	TestLoss        JSONFloat `json:"test_loss"`
	Epsilon         JSONFloat `json:"epsilon"`
	EpsilonRDP      JSONFloat `json:"epsilon_rdp"`
	RDPOrder        JSONFloat `json:"rdp_order"`
	Delta           float64   `json:"delta"`
	Accountant      string    `json:"accountant"`
	NoiseMultiplier float64   `json:"noise_multiplier"`
	SamplingRate    float64   `json:"sampling_rate"`
	Steps           int64     `json:"steps"`
	Epochs          float64   `json:"epochs"`
	WallSeconds     float64   `json:"wall_seconds"`
	Private         bool      `json:"private"`
	Sampling        string    `json:"sampling"`
	NoiseMode       string    `json:"noise_mode,omitempty"`
	// EpsilonConditionalOnSecretSeed is true in seeded mode: ε then holds
	// only while the seed stays secret (see Guarantee.Conditions).
	EpsilonConditionalOnSecretSeed bool `json:"epsilon_conditional_on_secret_seed"`
	// PriorEvent is the release before the DP-SGD steps (private data
	// normalisation), "" if none; PriorReleases how many times it was made
	// (more than once after crashes before a first checkpoint, each
	// counted).
	PriorEvent    string `json:"prior_event,omitempty"`
	PriorReleases int64  `json:"prior_releases,omitempty"`
	// LostSteps were taken, lost in a crash and counted as spent.
	LostSteps     int64       `json:"lost_steps,omitempty"`
	Guarantee     *Guarantee  `json:"guarantee,omitempty"`
	TrainExamples int         `json:"train_examples"`
	TestExamples  int         `json:"test_examples"`
	Parameters    int         `json:"parameters"`
	Trainable     int         `json:"trainable_parameters"`
	Config        Config      `json:"config"`
	Eval          *EvalResult `json:"eval,omitempty"`
	// Audit is the audit's result (audit.json, without the scores) when
	// the run was audited.
	Audit *AuditResult `json:"audit,omitempty"`
	Out   string       `json:"out"`
}

// finish evaluates the final model and writes summary.json, the plots and
// report.md.
func (r *run) finish() (*Summary, error) {
	c, p := &r.cfg, &r.plan
	r.out.progress.clear()
	nan := JSONFloat(math.NaN())
	s := &Summary{Steps: r.step, Epochs: float64(r.step) * p.Q, Private: c.IsPrivate(), Sampling: r.sampler.Describe(),
		TrainExamples: p.N, Parameters: r.model.model.NumParams(), Trainable: r.model.model.NumTrainable(), Config: *c, Out: r.opt.Out,
		Epsilon: nan, EpsilonRDP: nan, RDPOrder: nan, TestAccuracy: nan, TestTop5: nan, TestLoss: nan}
	if r.data.test != nil {
		if err := r.evaluate(); err != nil {
			return nil, err
		}
		e := r.evals[len(r.evals)-1].Eval
		s.Eval, s.TestAccuracy, s.TestTop5, s.TestLoss, s.TestExamples = e, JSONFloat(e.Top1), JSONFloat(e.Top5), e.Loss, e.Examples
	}
	if !r.lead() {
		return s, nil // rank 0 reports (ε, files)
	}
	if p.Private() {
		eps, err := r.book.epsilon(p.Kind, p.Delta)
		if err != nil {
			return nil, err
		}
		s.Epsilon = JSONFloat(eps)
		rdp, _ := r.book.ledger.Accountant("rdp")
		if ra, ok := rdp.(*accounting.RDP); ok {
			e, o, _ := ra.EpsilonAndOrder(p.Delta)
			s.EpsilonRDP, s.RDPOrder = JSONFloat(e), JSONFloat(o)
		}
		s.Delta, s.Accountant, s.NoiseMultiplier, s.SamplingRate, s.NoiseMode = p.Delta, string(p.Kind), p.Sigma, p.Q, c.Noise
		s.EpsilonConditionalOnSecretSeed = s.NoiseMode == string(dpsgd.ModeSeeded)
		s.LostSteps = r.book.lost
		if r.book.prior != nil {
			s.PriorEvent, s.PriorReleases = r.book.prior.String(), r.book.priorCount
		}
		s.Guarantee = guarantee(c, s)
		if r.audit != nil {
			if b := r.audit.black; b != nil {
				err := r.withEvalWeights(func() error {
					var err error
					r.audit.scores, err = b.scores(r.model.model, r.data.tr, c.PhysicalBatchSize, nil)
					return err
				})
				if err != nil {
					return nil, err
				}
			}
			ar, err := r.audit.finish(r.opt.Out, eps, p.Delta, r.step, string(p.Kind), r.logf)
			if err != nil {
				return nil, err
			}
			brief := *ar
			brief.MemberScores, brief.NonMemberScores = nil, nil
			s.Audit = &brief
			r.logf("%s", auditSentence(ar))
		}
	}
	s.WallSeconds = r.wallSeconds()
	if err := writeJSON(filepath.Join(r.opt.Out, "summary.json"), s); err != nil {
		return nil, err
	}
	if err := writePlots(r.opt.Out, filepath.Join(r.opt.Out, "metrics.jsonl"), string(p.Kind), c.TargetEpsilon); err != nil {
		r.logf("warning: plots: %v", err)
	}
	if err := writeReport(filepath.Join(r.opt.Out, "report.md"), s); err != nil {
		return nil, err
	}
	if a := s.Audit; a != nil && a.Exceeded && a.failIfExceeded {
		return s, fmt.Errorf("%s: ε_lower %.4g (one-run) and %.4g (f-DP) against ε = %.4g claimed: %w", filepath.Join(r.opt.Out, "audit.json"), a.EpsilonOneRun, a.EpsilonFDP, a.ClaimedEps, ErrAuditExceeded)
	}
	return s, nil
}

type evalPoint struct {
	Step int64       `json:"step"`
	Eval *EvalResult `json:"eval"`
}

// evaluate evaluates the model (its EMA weights when averaging is on) on
// the test set at the current step. The test set is public: this costs no
// privacy, and the result is post-processing of the trained weights.
func (r *run) evaluate() error {
	var res *EvalResult
	err := r.withEvalWeights(func() error {
		var err error
		if f := r.features; f != nil && f.testRows != nil {
			rows, chunk := *f.testRows, max(r.cfg.PhysicalBatchSize, 1)
			res, err = evaluate(f.suffix, r.data.test.NumClasses(), r.data.test.Classes(), f.rowShape, func(fn func(*data.Batch) error) error {
				return data.EvalRowBatches(rows, chunk, fn)
			})
			return err
		}
		res, err = Evaluate(r.model.model, r.data.test, r.data.tr, r.cfg.PhysicalBatchSize)
		return err
	})
	if err != nil {
		return err
	}
	eps := math.NaN()
	if r.plan.Private() {
		if eps, err = r.book.epsilon(r.plan.Kind, r.plan.Delta); err != nil {
			return err
		}
	}
	r.evals = append(r.evals, evalPoint{r.step, res})
	if err := r.out.metrics.eval(r.step, res, eps); err != nil {
		return r.stopOnWriteError(err)
	}
	r.logf("eval at step %d: test accuracy %.2f%% (top-5 %.2f%%), loss %.4f%s", r.step, 100*res.Top1, 100*res.Top5, res.Loss, epsText(eps, r.plan.Delta))
	return nil
}

// withEvalWeights runs fn with the EMA weights in the model when averaging
// is on (post-processing: free in privacy), restoring the trained weights
// afterwards.
func (r *run) withEvalWeights(fn func() error) error {
	ema, params := r.trainer.ema, r.model.train.params
	if ema == nil {
		return fn()
	}
	backup := make([][]float32, len(params))
	for i, p := range params {
		backup[i] = append([]float32(nil), p...)
		copy(p, ema.Params()[i])
	}
	defer func() {
		for i, p := range params {
			copy(p, backup[i])
		}
	}()
	return fn()
}

func epsText(eps, delta float64) string {
	if math.IsNaN(eps) {
		return ""
	}
	return fmt.Sprintf(", ε=%.4g (δ=%g)", eps, delta)
}

// writeJSON writes v atomically (temporary file, fsync, rename, directory
// fsync). NaN-able numbers are JSONFloat.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return checkpoint.WriteFileAtomic(path, append(b, '\n'))
}
