package train

import (
	"fmt"
	"math"
	"time"

	"dptrain/accounting"
	"dptrain/data"
	"dptrain/dist"
	"dptrain/dpsgd"
	"dptrain/nn"
	"dptrain/tensor"
)

// afterUpdateHook, set by tests only, runs after every update.
var afterUpdateHook func(r *run)

// stepper is one logical step's gradient: Begin, Accumulate for every
// physical batch, then Finish, which leaves the update direction in the
// trainable parameters' Grad and returns the event of what it released
// (nil for a public step). *dpsgd.PrivateStep and publicStep satisfy it.
type stepper interface {
	Begin()
	Accumulate(x *tensor.Tensor, labels []int) []float32
	Finish() (dpsgd.StepStats, accounting.Event, error)
}

// publicStep is the non-private counterpart of dpsgd.PrivateStep
// (pre-training on public data, and the baseline of `dptrain bench`): the
// mean gradient of the batch with one ordinary backward pass.
type publicStep struct {
	model           *nn.Model
	augMultiplicity int
	comm            dist.Comm // data-parallel ranks; nil: one process

	loss  nn.SoftmaxCrossEntropy
	stats dpsgd.StepStats
	grads [][]float32
	flat  []float32
}

// Begin zeroes the gradients for a new logical batch.
func (p *publicStep) Begin() {
	p.model.ZeroGrad()
	p.stats = dpsgd.StepStats{}
}

// Accumulate adds the gradient of the summed loss of one physical batch
// (rows weighted 1/K).
func (p *publicStep) Accumulate(x *tensor.Tensor, labels []int) []float32 {
	rows := x.Shape[0]
	if rows == 0 {
		return nil
	}
	k := max(p.augMultiplicity, 1)
	losses := p.loss.Forward(p.model.Forward(x, true), labels)
	p.model.Backward(p.loss.Backward([]float32{1 / float32(k)}))
	for _, l := range losses {
		p.stats.LossSum += float64(l)
	}
	p.stats.Examples += rows / k
	p.stats.Rows += rows
	p.stats.Physical++
	return losses
}

// Finish divides the summed gradient by the number of examples seen (by
// all ranks). It releases nothing private: the event is nil.
func (p *publicStep) Finish() (dpsgd.StepStats, accounting.Event, error) {
	p.grads = p.grads[:0]
	for _, prm := range p.model.Params() {
		if !prm.Frozen {
			p.grads = append(p.grads, prm.Grad)
		}
	}
	if p.comm != nil && p.comm.Size() > 1 {
		if err := dpsgd.SumAcrossRanks(p.comm, p.grads, &p.flat); err != nil {
			return dpsgd.StepStats{}, nil, err
		}
		if err := dpsgd.SumStats(p.comm, &p.stats); err != nil {
			return dpsgd.StepStats{}, nil, err
		}
	}
	if p.stats.Examples > 0 {
		inv := float32(1 / float64(p.stats.Examples))
		for _, g := range p.grads {
			for i := range g {
				g[i] *= inv
			}
		}
	}
	return p.stats, nil, nil
}

// newStepper returns the run's step: private with the plan's mechanism,
// or public.
func (r *run) newStepper() stepper {
	c := &r.cfg
	m := r.model.model
	if r.features != nil {
		m = r.features.suffix // the prefix is frozen: its gradient is 0
	}
	if r.plan.Private() {
		return &dpsgd.PrivateStep{Model: m, Noise: r.noise, Comm: r.opt.Comm, MaterializeBudget: c.MaterializeBudget, Config: r.plan.Privacy}
	}
	return &publicStep{model: m, augMultiplicity: c.AugMultiplicity, comm: r.opt.Comm}
}

// loop trains from r.step to r.total: each step's release is recorded in
// the privacy book before anything derived from it (weights, metrics,
// checkpoints) is written.
func (r *run) loop() error {
	c := &r.cfg
	if r.audit.gradientCanaries() && r.step > 0 {
		// Even a finished run: finish would score canaries it never saw.
		return fmt.Errorf("audit: %s holds a run at step %d: a white-box audited run cannot resume (its canary scores are not checkpointed); start it again in an empty --out", r.opt.Out, r.step)
	}
	if r.step >= r.total {
		return nil
	}
	opt := data.LoaderOptions{K: c.AugMultiplicity, Physical: c.PhysicalBatchSize, Key: r.dataKey}
	var loader *data.Loader
	var err error
	if r.features != nil {
		loader, err = data.NewRowLoader(r.features.trainRows, opt)
	} else {
		ds := r.data.train
		if r.audit != nil && r.audit.black != nil {
			ds = r.audit.black.trainSet(r.audit.members) // real examples, then the members
		}
		loader, err = data.NewLoader(ds, r.data.tr, opt)
	}
	if err != nil {
		return err
	}
	sampler := r.rankSampler()
	if r.audit.gradientCanaries() {
		sampler = loaderSampler{Sampler: sampler, nData: r.audit.nData} // gradient canaries have no image
	}
	stream := loader.Stream(sampler, r.step)
	defer stream.Close()
	s := r.newStepper()
	if stop, err := r.anyStop(); err != nil {
		return err
	} else if stop {
		// Nothing taken since the last checkpoint (resumed or step 0).
		return &InterruptedError{Step: r.step, TotalSteps: r.total, Checkpoint: r.out.ckptDir}
	}
	for taken := 1; r.step < r.total; taken++ {
		if r.book.exhausted() {
			// budgetEnd ends the run before this; never step past ε.
			return fmt.Errorf("internal: step %d would take the ledger past the budget ε=%g (%d steps recorded)", r.step+1, c.TargetEpsilon, r.book.steps())
		}
		t0 := time.Now()
		st, lr, err := r.takeStep(stream, s)
		if err != nil {
			return err
		}
		logErr := r.logStep(st, lr, time.Since(t0).Seconds())
		if err := r.afterStep(taken, logErr); err != nil {
			return err
		}
	}
	return nil
}

// takeStep computes one logical step from the stream's physical batches,
// records its release, and applies the update.
func (r *run) takeStep(stream *data.Stream, s stepper) (dpsgd.StepStats, float64, error) {
	s.Begin()
	r.dataWait = 0
	for {
		t0 := time.Now()
		b, err := stream.Next()
		r.dataWait += time.Since(t0)
		if err != nil {
			return dpsgd.StepStats{}, 0, err
		}
		if b.Step != r.step {
			return dpsgd.StepStats{}, 0, fmt.Errorf("internal: data for step %d while at step %d", b.Step, r.step)
		}
		rows := b.N * b.K
		s.Accumulate(batchTensor(b, r.rowShape()), b.Labels[:rows])
		last := b.Last()
		stream.Release(b)
		if last {
			break
		}
	}
	if r.audit.gradientCanaries() {
		r.audit.insert(r.step, r.model.train.grads)
	}
	st, ev, err := s.Finish()
	if err != nil {
		return st, 0, fmt.Errorf("step %d: %w", r.step+1, err)
	}
	if r.audit.gradientCanaries() {
		r.audit.score(r.model.train.grads)
	}
	if st.Rows > 0 && (math.IsNaN(st.MeanLoss()) || math.IsInf(st.MeanLoss(), 0)) {
		return st, 0, r.everyRank(fmt.Errorf("step %d: training loss is %v: stopping; the last good checkpoint in %s is kept (try a lower learning_rate)", r.step, st.MeanLoss(), r.out.ckptDir))
	}
	release, finite := releaseDigest(r.model.train.grads, ev != nil)
	if ev != nil {
		// One event per logical step, the one the mechanism reports, in the
		// ledger and the journal before anything derived from this step can
		// be saved.
		err := r.book.record(ev, 1, journalEvent{Event: "step", Step: r.step + 1, Release: release})
		if r.ranks() > 1 {
			err = r.together(err) // rank 0's journal (or replay check) decides for all
		}
		if err != nil {
			return st, 0, err
		}
	}
	if !finite {
		// Never applied, recorded in a checkpoint or evaluated.
		return st, 0, r.everyRank(fmt.Errorf("step %d: the update is not finite (Inf or NaN in the noisy gradient sum, e.g. clip_norm·noise_multiplier beyond float32's range or an overflowing model): stopping without applying it; the last good checkpoint in %s is kept", r.step+1, r.out.ckptDir))
	}
	lr := r.trainer.sched.LR(r.step)
	r.trainer.optim.Step(r.model.train.params, r.model.train.grads, lr)
	if r.trainer.ema != nil {
		r.trainer.ema.Update(r.model.train.params)
	}
	r.step++
	if afterUpdateHook != nil {
		afterUpdateHook(r)
	}
	return st, lr, nil
}

// logStep writes the step's metrics line and progress. ε of the run's own
// accountant (the one it budgets and reports) is computed on the steps
// due at the log cadence (a PLD evaluation costs more than a small step);
// RDP's, cheap, on every step.
func (r *run) logStep(st dpsgd.StepStats, lr, secs float64) error {
	if !r.lead() {
		return nil
	}
	due := r.step%int64(max(r.cfg.LogEvery, 1)) == 0 || r.step == r.total
	eps, epsRDP := math.NaN(), math.NaN()
	if r.plan.Private() {
		epsRDP, _ = r.book.epsilon("rdp", r.plan.Delta)
		if due {
			if eps, _ = r.book.epsilon(r.plan.Kind, r.plan.Delta); r.plan.Kind == "rdp" {
				epsRDP = eps
			}
		}
	}
	if err := r.out.metrics.step(r.step, st, lr, secs, r.dataWait.Seconds(), eps, epsRDP, r.wallSeconds()); err != nil {
		return r.stopOnWriteError(err)
	}
	r.out.progress.update(r.step, st, float64(st.Examples)/secs, due, r.epsilonWords(eps, epsRDP), r.logf)
	return nil
}

// epsilonWords words ε so far for the progress line: the run's accountant,
// with RDP alongside when the run's is PLD, and the budget; "" for a
// public run or an ε not computed.
func (r *run) epsilonWords(eps, epsRDP float64) string {
	if !r.plan.Private() || math.IsNaN(eps) {
		return ""
	}
	s := fmt.Sprintf(" ε(%s) %.3g", r.plan.Kind, eps)
	if r.plan.Kind != "rdp" && !math.IsNaN(epsRDP) {
		s += fmt.Sprintf(" (rdp %.3g)", epsRDP)
	}
	if t := r.cfg.TargetEpsilon; t > 0 {
		s += fmt.Sprintf(" of %g", t)
	}
	return s
}

// afterStep evaluates, checkpoints and stops as due after a step; taken
// counts the steps of this invocation, failed is an error of this rank
// since the update (its metrics), which every rank learns of.
func (r *run) afterStep(taken int, failed error) error {
	c := &r.cfg
	final := r.step == r.total
	if failed == nil && c.EvalEvery > 0 && r.step%int64(c.EvalEvery) == 0 && !final && r.data.test != nil {
		failed = r.evaluate()
	}
	stop, err := r.syncStep(failed)
	if err != nil {
		return err
	}
	interrupted := !final && stop
	if r.step%int64(c.CheckpointEvery) == 0 || final || interrupted {
		var err error
		if r.lead() {
			if err = r.saveCheckpoint(); err != nil {
				err = fmt.Errorf("checkpoint at step %d: %w; stopping: the previous checkpoint in %s is kept (rerun the same command to resume from it once the cause is fixed)", r.step, err, r.out.ckptDir)
			}
		}
		if err := r.together(err); err != nil {
			return err
		}
	}
	if interrupted {
		return &InterruptedError{Step: r.step, TotalSteps: r.total, Checkpoint: r.out.ckptDir}
	}
	if r.opt.StopAfter > 0 && taken >= r.opt.StopAfter && !final {
		return ErrStopped
	}
	return nil
}

// rowShape is the shape of one training row as the stepped model takes
// it: nil (the batch's image shape) without a feature cache.
func (r *run) rowShape() []int {
	if r.features == nil {
		return nil
	}
	return r.features.rowShape
}
