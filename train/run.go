package train

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"dptrain/data"
	"dptrain/dist"
	"dptrain/dpsgd"
	"dptrain/internal/par"
	"dptrain/internal/seed"
	"dptrain/tensor"
)

// Options are the parts of a run that are not configuration.
type Options struct {
	Out string // output folder (created)
	// Log receives progress: a redrawn bar when Terminal, else plain lines.
	Log      io.Writer
	Terminal bool
	// StopAfter, when > 0, ends this invocation after that many steps as if
	// the process had been killed (tests of resume). No final files.
	StopAfter int
	// Stop, when closed (Ctrl-C, SIGTERM), ends the run after the current
	// step with a checkpoint: Run returns an *InterruptedError.
	Stop <-chan struct{}
	// Comm, when it has several ranks, trains data-parallel: every rank
	// calls Run with the same configuration and Out; rank 0 writes Out
	// (see ranks.go). nil: one process.
	Comm dist.Comm
}

// InterruptedError is returned when Options.Stop ended the run: a
// checkpoint of Step was written, and re-running the same command resumes.
type InterruptedError struct {
	Step, TotalSteps int64
	Checkpoint       string // folder of the checkpoints
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted at step %d of %d; a checkpoint of it is in %s: rerun the same command to resume", e.Step, e.TotalSteps, e.Checkpoint)
}

func (r *run) stopRequested() bool {
	if r.opt.Stop == nil {
		return false
	}
	select {
	case <-r.opt.Stop:
		return true
	default:
		return false
	}
}

// ErrStopped is returned when Options.StopAfter ended the run early.
var ErrStopped = errors.New("stopped early (StopAfter)")

// run is one invocation of Run: what it was asked, what it resolved to,
// what it built, and where it stands.
type run struct {
	dataWait    time.Duration // of the current step: time blocked on the loader
	cfg         Config        // with every default applied (withDefaults)
	opt         Options
	plan        plan // q, σ, δ, steps, budget, schedule: pure, from cfg and N
	data        runData
	model       built
	trainer     trainer           // optimizer, schedule, EMA
	noise       dpsgd.NoiseSource // private runs; nil otherwise
	book        *privacyBook      // the ledger and the journal
	dataKey     data.Key          // keys batch sampling and augmentation
	sampler     data.Sampler
	out         outputs
	fingerprint string // of the trajectory settings (resume refuses another)
	step, total int64  // steps taken, and where the run ends
	start       time.Time
	priorWall   float64 // wall time of earlier invocations (resume)
	evals       []evalPoint
	features    *features // the cached frozen prefix (feature_cache); nil otherwise
	audit       *auditRun // the canaries of an audited run (nil: none)
}

// runData is the opened training and test sets with their transform.
type runData struct {
	train, test data.Dataset // test is nil without test_data
	tr          data.Transform
	digest      string // content digest of the training set (journal header)
}

// outputs are the open files of --out.
type outputs struct {
	ckptDir  string
	unlock   func() error
	metrics  *metricsWriter
	progress *progress
}

func (r *run) wallSeconds() float64 { return r.priorWall + time.Since(r.start).Seconds() }

func (r *run) logf(format string, args ...any) {
	if r.opt.Log != nil {
		if r.out.progress != nil {
			r.out.progress.clear()
		}
		fmt.Fprintf(r.opt.Log, format+"\n", args...)
	}
}

// Run trains a model as configured, writing checkpoints, metrics, plots, a
// summary and a report into opt.Out (see the package documentation).
// Re-running with the same config and --out resumes from the newest valid
// checkpoint.
func Run(cfg Config, opt Options) (*Summary, error) {
	r := &run{cfg: cfg, opt: opt, start: time.Now()}
	defer r.close()
	if err := r.setup(); err != nil {
		return nil, err
	}
	if err := r.loop(); err != nil {
		return nil, err
	}
	return r.finish()
}

// PrepareFeatures builds (or checks) the feature caches of a config with
// feature_cache set, without training: `dptrain features`.
func PrepareFeatures(cfg Config, log io.Writer) error {
	if cfg.FeatureCache == "" {
		return errors.New("feature_cache: not set: give the folder to keep the features in")
	}
	r := &run{cfg: cfg, opt: Options{Log: log}, start: time.Now()}
	defer r.close()
	if err := r.cfg.applyInitDefaults(); err != nil {
		return err
	}
	if err := r.cfg.validate(); err != nil {
		return err
	}
	if r.cfg.Threads > 0 {
		par.SetThreads(r.cfg.Threads)
	}
	if w := tensor.SlowBLASWarning(); w != "" {
		r.logf("dptrain: warning: %s", w)
	}
	if err := r.openData(); err != nil {
		return err
	}
	if err := r.build(); err != nil {
		return err
	}
	return r.prepareFeatures()
}

// close releases the files and the lock of --out.
func (r *run) close() {
	r.out.metrics.Close()
	if r.book != nil {
		r.book.close()
	}
	if r.out.unlock != nil {
		r.out.unlock()
	}
	for _, ds := range []data.Dataset{r.data.train, r.data.test} {
		if ds != nil {
			ds.Close()
		}
	}
	if r.features != nil {
		r.features.close()
	}
}

// setup validates, opens the data, builds the model and the plan, then
// opens --out (resuming if it holds a run) and makes the releases that
// precede training.
func (r *run) setup() error {
	err := r.cfg.applyInitDefaults()
	if err == nil {
		err = r.cfg.validate()
	}
	if err == nil && r.opt.Out == "" {
		err = errors.New("--out: required (the folder for checkpoints, metrics and the report)")
	}
	if err == nil {
		err = r.checkRanks()
	}
	if err := r.together(err); err != nil {
		return err
	}
	if !r.lead() {
		r.cfg.TestData = "" // rank 0 evaluates
	}
	if r.cfg.Threads > 0 {
		par.SetThreads(r.cfg.Threads) // every kernel, the noise and the optimizer
	}
	if w := tensor.SlowBLASWarning(); w != "" {
		r.logf("dptrain: warning: %s", w)
	}
	err = r.openData()
	if err == nil {
		err = r.build()
	}
	if err := r.together(err); err != nil {
		return err
	}
	if err := r.sameData(); err != nil {
		return err
	}
	if err := r.shareKey(); err != nil {
		return err
	}
	if r.lead() {
		err = r.openOut()
	} else {
		r.out.ckptDir = filepath.Join(r.opt.Out, "checkpoints") // named in messages; rank 0 writes it
		r.book.replica = true
	}
	if err := r.together(err); err != nil {
		return err
	}
	if err := r.shareState(); err != nil {
		return err
	}
	if r.cfg.FeatureCache != "" {
		// Training then holds only the suffix's activations; the check
		// below is of the whole model's, which extraction does not train.
		if err := r.prepareFeatures(); err != nil {
			return err
		}
	} else if err := r.together(r.checkMemory()); err != nil {
		return err
	}
	if s, _ := data.ParseSampling(r.cfg.Sampling); s == data.SamplingShuffle {
		r.sampler = &data.ShuffleSampler{N: r.plan.N, BatchSize: r.cfg.BatchSize, Key: r.dataKey}
	} else {
		ps := data.PoissonSampler{N: r.plan.N, Rate: r.plan.Q, Key: r.dataKey}
		if err := ps.Validate(); err != nil {
			return err
		}
		r.sampler = ps
		if r.audit != nil {
			r.audit.sampler = ps
		}
	}
	r.out.progress = newProgress(r.opt.Log, r.opt.Terminal, r.total)
	r.describe()
	return nil
}

// openData opens the data sets of the (validated) config, then resolves
// the config's defaults, which depend on the training set, and builds the
// transform.
func (r *run) openData() error {
	var err error
	c := &r.cfg
	if r.data.train, r.data.test, err = openData(c, r.dataPart()); err != nil {
		return err
	}
	n := r.data.train.Len()
	if n == 0 {
		return fmt.Errorf("train_data %s: no examples", c.TrainData)
	}
	if c.Audit != nil {
		if r.ranks() > 1 {
			return fmt.Errorf("audit: runs in one process (this run has %d ranks)", r.ranks())
		}
		a := *c.Audit
		a.withDefaults()
		r.audit = newAuditRun(a, n, c.Seed)
		if a.Kind == "black" {
			if r.audit.black, err = newBlackCanaries(r.data.train, a.Canaries, c.Seed); err != nil {
				return err
			}
			r.audit.nData = len(r.audit.black.real)
		}
		n = r.trainN() // the member canaries are training examples
	}
	if c.BatchSize > n {
		return fmt.Errorf("batch_size %d is larger than the %d training examples", c.BatchSize, n)
	}
	if r.data.digest, err = data.Digest(r.data.train); err != nil {
		return fmt.Errorf("train_data %s: %w", c.TrainData, err)
	}
	ch, h, w := r.data.train.Shape()
	r.cfg = r.cfg.withDefaults(runFacts{N: n, C: ch, H: h, W: w})
	if r.data.tr, err = transform(c, ch, h, w); err != nil {
		return err
	}
	if err := r.data.tr.Validate(ch, h, w); err != nil {
		return fmt.Errorf("crop, crop_size, crop_padding (images %d×%d×%d): %w", ch, h, w, err)
	}
	return nil
}

// trainN is N, the training set's size: the data's examples and, in an
// audited run, the member canaries.
func (r *run) trainN() int {
	if r.audit != nil {
		return r.audit.nData + len(r.audit.members)
	}
	return r.data.train.Len()
}

// build builds the model, the plan, the optimizer and the randomness.
func (r *run) build() error {
	c := &r.cfg
	n := r.trainN()
	ch, h, w := r.data.train.Shape()
	oc, oh, ow := r.data.tr.OutShape(ch, h, w)
	var err error
	if r.model, err = buildModel(*c, [3]int{oc, oh, ow}, r.data.train.NumClasses()); err != nil {
		return err
	}
	if r.plan, err = makePlan(*c, n); err != nil {
		return err
	}
	r.total = r.plan.Total
	r.cfg = c.withDefaults(runFacts{N: n, C: ch, H: h, W: w, Steps: r.plan.Total})
	if r.audit.gradientCanaries() {
		if err := r.audit.placeCanaries(r.model.train, c.Seed); err != nil {
			return err
		}
		pc := r.plan.Privacy // what PrivateStep clips, noises and divides by
		r.audit.clip, r.audit.expected = pc.ClipNorm, pc.ExpectedBatchSize
		r.audit.q, r.audit.sigma = pc.SamplingRate, pc.NoiseMultiplier
	}
	r.dataKey = data.KeyFromSeed(c.Seed)
	if r.plan.Private() {
		if c.Noise == string(dpsgd.ModeSecure) {
			// The batch composition must be unpredictable too: a known key
			// would reveal which examples each step used.
			if r.dataKey, err = data.NewSecretKey(); err != nil {
				return err
			}
		}
		if r.noise, err = dpsgd.NewNoise(dpsgd.NoiseMode(c.Noise), seed.Derive(c.Seed, seed.Noise)); err != nil {
			return err
		}
	}
	r.book = newPrivacyBook(r.plan, r.logf)
	if r.trainer, err = buildTrainer(*c, r.model.train, r.plan.Schedule); err != nil {
		return err
	}
	r.fingerprint = fingerprint(*c)
	return nil
}

// openOut locks --out, resumes the run it holds or starts one (the
// data-normalisation release, then a checkpoint at step 0), and opens the
// metrics.
func (r *run) openOut() error {
	if err := checkOutFolder(r.opt.Out); err != nil {
		return err
	}
	if err := os.MkdirAll(r.opt.Out, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	var err error
	if r.out.unlock, err = lockOut(r.opt.Out); err != nil {
		return err
	}
	r.out.ckptDir = filepath.Join(r.opt.Out, "checkpoints")
	resumed, err := r.resume()
	if err != nil {
		return err
	}
	facts := journalFacts{spec: r.cfg.TrainData, digest: r.data.digest, n: r.plan.N, secure: r.cfg.Noise == string(dpsgd.ModeSecure)}
	if err := r.book.open(r.opt.Out, resumed, facts); err != nil {
		return err
	}
	if !resumed {
		if err := r.start0(); err != nil {
			return err
		}
	}
	if r.total, err = r.book.budgetEnd(r.cfg, r.plan, r.step, r.total); err != nil {
		return err
	}
	r.out.metrics, err = openMetrics(filepath.Join(r.opt.Out, "metrics.jsonl"), r.step, resumed)
	return err
}

// start0 begins a fresh run: the data-normalisation statistics (a private
// release, recorded before anything derived from it is written), then a
// checkpoint at step 0, so that from now on a restart always resumes
// (never silently starts over with fresh randomness).
func (r *run) start0() error {
	if r.model.dataNorm != nil {
		ev, err := r.computeDataNorm()
		if err != nil {
			return err
		}
		if ev != nil {
			if !reflect.DeepEqual(ev, r.plan.Prior) {
				return fmt.Errorf("internal: the data normalisation released %s, the plan accounted for %s", ev, r.plan.Prior)
			}
			// The releases lost before a first checkpoint (secure mode),
			// then this one.
			d, _ := releaseDigest([][]float32{r.model.dataNorm.Mean.Value, r.model.dataNorm.Var.Value}, true)
			if err := r.book.record(ev, int(r.book.priorCount), journalEvent{Event: "data_norm", Release: d}); err != nil {
				return err
			}
		}
	}
	if err := r.saveCheckpoint(); err != nil {
		return fmt.Errorf("checkpoint at step 0: %w", err)
	}
	return nil
}

// describe logs what the run will do.
func (r *run) describe() {
	c, p := &r.cfg, &r.plan
	m := r.model.model
	r.logf("dptrain: %s on %s (%d examples, %d classes), %d trainable of %d parameters", c.Model, c.TrainData, p.N, r.data.train.NumClasses(), m.NumTrainable(), m.NumParams())
	if r.ranks() > 1 {
		r.logf("data parallel on %d ranks: each trains its block of about %d examples; the gradient sums are all-reduced, the noise added once (rank 0), and rank 0 writes %s", r.ranks(), p.N/r.ranks(), r.opt.Out)
	}
	if len(r.model.initSkipped) > 0 {
		r.logf("init %s: kept fresh initialisation for %v", c.Init, r.model.initSkipped)
	}
	if !p.Private() {
		r.logf("non-private training (no privacy guarantee): %d steps, batch %d, sampling %s", r.total, c.BatchSize, c.Sampling)
		return
	}
	r.logf("DP-SGD: q=%.6g (B=%d), σ=%.6g, C=%g, δ=%g, %d steps (%.3g epochs), accountant %s, noise %s; planned ε = %.4g", p.Q, c.BatchSize, p.Sigma, c.ClipNorm, p.Delta, r.total, float64(r.total)*p.Q, p.Kind, c.Noise, p.Epsilon)
	if c.Noise == string(dpsgd.ModeSeeded) {
		r.logf("warning: noise: seeded — noise, batches and augmentations are derived from seed %d: every ε printed holds only while that seed stays secret (use the default, noise: secure, for a release)", c.Seed)
	}
	if p.Delta >= 1/float64(p.N) {
		r.logf("warning: δ = %g ≥ 1/N (allow_large_delta): the guarantee allows releasing an example outright with probability δ", p.Delta)
	}
	if c.TargetEpsilon > 0 && r.total < p.Planned {
		r.logf("budget: ε=%g allows %d of the %d planned steps; stopping there", c.TargetEpsilon, r.total, p.Planned)
	}
}

// stopOnWriteError words a failed write of the run's files (a full disk):
// the run stops, the newest checkpoint stays valid, the journal has every
// release.
func (r *run) stopOnWriteError(err error) error {
	return fmt.Errorf("%w: stopping at step %d; the newest checkpoint in %s is kept and the privacy journal is complete: free space and rerun the same command to resume", err, r.step, r.out.ckptDir)
}
