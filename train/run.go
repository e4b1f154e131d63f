package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"dptrain/accounting"
	"dptrain/checkpoint"
	"dptrain/data"
	"dptrain/dpsgd"
	"dptrain/nn"
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

type run struct {
	cfg          Config
	opt          Options
	fingerprint  string
	trainDS      data.Dataset
	testDS       data.Dataset
	tr           data.Transform
	modelCfg     nn.ModelConfig
	model        *nn.Model
	params       [][]float32
	grads        [][]float32
	optim        dpsgd.Optimizer
	sched        dpsgd.Schedule
	ema          *dpsgd.EMA
	noise        dpsgd.NoiseSource
	ledger       *accounting.Ledger
	sampler      data.Sampler
	q, sigma     float64
	delta        float64
	kind         string
	n            int
	step         int64
	totalSteps   int64
	plannedSteps int64
	// dataKey keys batch sampling and augmentation: derived from the seed
	// in seeded mode; in secure mode 256 bits from the OS, fresh in every
	// process and never stored, so that steps re-run after a crash draw new
	// batches (their cost is then exactly one more Step(q, σ) each).
	dataKey data.Key
	// dataDigest identifies the training data by content (journal header).
	dataDigest string
	// maxLedgerSteps (with a target ε) is how many (q, σ) steps the budget
	// allows in the ledger, steps lost to crashes in secure mode included.
	maxLedgerSteps int64
	// prior is the event released before the DP-SGD steps (private data
	// normalisation), nil if none; it is one entry of the ledger's Len.
	prior accounting.Event
	// priorCount is how many times prior was released: 1, or more when a
	// secure-mode run crashed after the release and before its first
	// checkpoint (each release counts).
	priorCount  int64
	dataNorm    *nn.Standardize
	dataNormIdx int
	lostSteps   int64
	journal     *journal
	// replay (seeded mode) holds the journaled events after the newest
	// checkpoint: the re-run must release exactly these again.
	replay      []journalEvent
	unlock      func() error
	ckptDir     string
	start       time.Time
	priorWall   float64
	metrics     *metricsWriter
	progress    *progress
	evals       []evalPoint
	initSkipped []string
	// plannedEps is ε(δ) of the whole planned schedule, computed before the
	// first step.
	plannedEps float64
}

// priorLen is how many ledger events precede the DP-SGD steps.
func (r *run) priorLen() int64 {
	if r.prior == nil {
		return 0
	}
	return r.priorCount
}

// priorEvent is everything released before the DP-SGD steps, as one event
// (nil if nothing).
func (r *run) priorEvent() accounting.Event {
	if r.prior == nil || r.priorCount <= 1 {
		return r.prior
	}
	return accounting.SelfComposed{Event: r.prior, Count: int(r.priorCount)}
}

func (r *run) wallSeconds() float64 { return r.priorWall + time.Since(r.start).Seconds() }

func (r *run) logf(format string, args ...any) {
	if r.opt.Log != nil {
		if r.progress != nil {
			r.progress.clear()
		}
		fmt.Fprintf(r.opt.Log, format+"\n", args...)
	}
}

// Run trains a model as configured, writing checkpoints, metrics, plots, a
// summary and a report into opt.Out. Re-running with the same config and
// --out resumes from the newest valid checkpoint.
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

// close releases the files and the lock of --out.
func (r *run) close() {
	r.metrics.Close()
	r.journal.Close()
	if r.unlock != nil {
		r.unlock()
	}
}

func (r *run) setup() error {
	c := &r.cfg
	if err := c.validate(); err != nil {
		return err
	}
	if r.opt.Out == "" {
		return errors.New("--out: required (the folder for checkpoints, metrics and the report)")
	}
	if c.Threads > 0 {
		tensor.SetThreads(c.Threads)
		dpsgd.SetThreads(c.Threads)
	}
	if c.AugMultiplicity == 0 {
		c.AugMultiplicity = 1
	}
	if c.KeepCheckpoints == 0 {
		c.KeepCheckpoints = 3
	}
	if c.Sampling == "" {
		c.Sampling = "poisson"
	}
	if c.Optimizer == "" {
		c.Optimizer = "momentum"
	}
	if c.LRSchedule == "" {
		c.LRSchedule = "constant"
	}
	if c.IsPrivate() {
		if c.FeatureNorm == "data" && c.DataNormNoiseMultiplier == 0 {
			c.DataNormNoiseMultiplier = 8
		}
		if c.Accountant == "" {
			c.Accountant = "pld"
		}
		if c.Noise == "" {
			c.Noise = dpsgd.ModeSecure
		}
	}
	var err error
	if r.trainDS, r.testDS, err = openData(c); err != nil {
		return err
	}
	r.n = r.trainDS.Len()
	if r.n == 0 {
		return fmt.Errorf("train_data %s: no examples", c.TrainData)
	}
	if c.BatchSize > r.n {
		return fmt.Errorf("batch_size %d is larger than the %d training examples", c.BatchSize, r.n)
	}
	if r.dataDigest, err = data.Digest(r.trainDS); err != nil {
		return fmt.Errorf("train_data %s: %w", c.TrainData, err)
	}
	if c.PhysicalBatchSize == 0 {
		c.PhysicalBatchSize = min(c.BatchSize, 256)
	}
	ch, h, w := r.trainDS.Shape()
	if r.tr, err = transform(c, ch, h, w); err != nil {
		return err
	}
	if err := r.tr.Validate(ch, h, w); err != nil {
		return fmt.Errorf("crop, crop_size, crop_padding (images %d×%d×%d): %w", ch, h, w, err)
	}
	oh, ow := h, w
	if r.tr.Height > 0 {
		oh, ow = r.tr.Height, r.tr.Width
	}
	r.modelCfg = nn.ModelConfig{Name: c.Model, NumClasses: r.trainDS.NumClasses(), InputShape: [3]int{ch, oh, ow}, Stem: c.Stem, WS: c.WeightStandardization, FeatureNorm: c.FeatureNorm, Seed: c.Seed}
	if err := checkModelMemory(r.modelCfg, c); err != nil {
		return err
	}
	if r.model, err = nn.NewModel(r.modelCfg); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	if err := nn.Validate(r.model); err != nil {
		return err
	}
	if c.FeatureNorm == "data" {
		if r.dataNorm, r.dataNormIdx = findStandardize(r.model); r.dataNorm == nil {
			return fmt.Errorf("feature_norm: data: model %s has no data-normalisation layer", c.Model)
		}
		if c.IsPrivate() {
			r.prior, r.priorCount = dataNormEvent(c.DataNormNoiseMultiplier), 1
		}
	}
	if c.Init != "" {
		if r.initSkipped, err = initFrom(r.model, c.Init); err != nil {
			return err
		}
	}
	if c.FreezeLayers > 0 {
		if err := r.model.FreezeLayers(c.FreezeLayers); err != nil {
			return fmt.Errorf("freeze_layers: %w", err)
		}
	}
	if c.TrainLastLayerOnly {
		if err := r.model.TrainLastLayerOnly(); err != nil {
			return err
		}
	}
	for _, p := range r.model.Params() {
		if !p.Frozen {
			r.params = append(r.params, p.Value)
			r.grads = append(r.grads, p.Grad)
		}
	}

	// Length, sampling and privacy.
	r.q = float64(c.BatchSize) / float64(r.n)
	if r.plannedSteps, err = plannedSteps(c, r.n); err != nil {
		return err
	}
	r.totalSteps = r.plannedSteps
	r.dataKey = data.KeyFromSeed(c.Seed)
	if c.IsPrivate() {
		r.kind = c.Accountant
		r.delta = c.Delta
		if r.delta == 0 {
			r.delta = DefaultDelta(r.n)
			c.Delta = r.delta
		}
		if r.delta >= 1/float64(r.n) && !c.AllowLargeDelta {
			return fmt.Errorf("delta: %g ≥ 1/N = %g (N = %d training examples): such a δ allows a mechanism that publishes an example outright with probability δ; use delta < 1/N (the default is %g), or set allow_large_delta: true to accept it (the report and summary will say so)", r.delta, 1/float64(r.n), r.n, DefaultDelta(r.n))
		}
		r.sigma = c.NoiseMultiplier
		if c.TargetEpsilon > 0 {
			r.sigma, _, err = accounting.CalibrateNoiseAfter(r.kind, c.TargetEpsilon, r.delta, r.q, int(r.plannedSteps), r.prior)
			if err != nil {
				return fmt.Errorf("target_epsilon %g: %w", c.TargetEpsilon, err)
			}
			maxSteps, err := accounting.MaxStepsAfter(r.kind, c.TargetEpsilon, r.delta, r.q, r.sigma, r.prior)
			if err != nil {
				return fmt.Errorf("target_epsilon %g: %w", c.TargetEpsilon, err)
			}
			r.maxLedgerSteps = int64(maxSteps)
			r.totalSteps = min(r.totalSteps, int64(maxSteps))
		}
		if err := r.checkPlannedEpsilon(); err != nil {
			return err
		}
		if c.Noise == dpsgd.ModeSecure {
			// The batch composition must be unpredictable too: a known key
			// would reveal which examples each step used.
			if r.dataKey, err = data.NewSecretKey(); err != nil {
				return err
			}
		}
		if r.noise, err = dpsgd.NewNoise(c.Noise, c.Seed^0x6e6f697365); err != nil {
			return err
		}
		cfgP := dpsgd.PrivacyConfig{ClipNorm: c.ClipNorm, NoiseMultiplier: r.sigma, ExpectedBatchSize: float64(c.BatchSize), PerLayerClipping: c.PerLayerClipping, AugMultiplicity: c.AugMultiplicity}
		if err := cfgP.Validate(); err != nil {
			return err
		}
		if err := checkClipRange(c.ClipNorm, r.sigma, c.BatchSize); err != nil {
			return err
		}
		if c.Noise == dpsgd.ModeSecure {
			if err := r.checkSecureRange(); err != nil {
				return err
			}
		}
	}
	r.ledger = &accounting.Ledger{}

	// Optimiser, schedule, EMA.
	oc := dpsgd.DefaultOptimizerConfig(c.Optimizer)
	if c.Momentum != 0 {
		oc.Momentum = c.Momentum
	}
	oc.WeightDecay = c.WeightDecay
	var sizes []int
	var decay []bool
	for _, p := range r.model.Params() {
		if !p.Frozen {
			sizes = append(sizes, len(p.Value))
			decay = append(decay, !p.NoDecay)
		}
	}
	if r.optim, err = dpsgd.NewOptimizer(oc, sizes, decay); err != nil {
		return err
	}
	warm := int64(c.WarmupSteps)
	if warm == 0 && c.WarmupEpochs > 0 {
		warm = int64(math.Round(c.WarmupEpochs * float64(r.n) / float64(c.BatchSize)))
	}
	sc := dpsgd.ScheduleConfig{Kind: c.LRSchedule, LR: c.LearningRate, WarmupSteps: warm}
	switch c.LRSchedule {
	case "cosine":
		sc.TotalSteps, sc.FinalLR = max(r.totalSteps, warm+1), c.FinalLR
	case "step":
		sc.Gamma = c.LRGamma
		for _, m := range c.LRMilestones {
			sc.Milestones = append(sc.Milestones, int64(m))
		}
	}
	if r.sched, err = sc.Build(); err != nil {
		return fmt.Errorf("learning-rate schedule: %w", err)
	}
	if c.EMADecay > 0 {
		warmup := c.EMAWarmup == nil || *c.EMAWarmup
		if r.ema, err = dpsgd.NewEMA(r.params, c.EMADecay, warmup); err != nil {
			return err
		}
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = int(max(1, r.totalSteps/20))
	}
	if c.LogEvery == 0 {
		c.LogEvery = int(max(1, r.totalSteps/50))
	}
	r.fingerprint = fingerprint(*c)

	// Output folder, its lock, resume.
	if err := checkOutFolder(r.opt.Out); err != nil {
		return err
	}
	if err := os.MkdirAll(r.opt.Out, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	if r.unlock, err = lockOut(r.opt.Out); err != nil {
		return err
	}
	r.ckptDir = filepath.Join(r.opt.Out, "checkpoints")
	resumed, err := r.resume()
	if err != nil {
		return err
	}
	if err := r.openJournal(resumed); err != nil {
		return err
	}
	if !resumed && r.dataNorm != nil {
		if err := r.computeDataNorm(); err != nil {
			return err
		}
		if r.prior != nil {
			// The releases lost before a first checkpoint (secure mode),
			// then this one.
			if err := r.ledger.RecordN(r.prior, int(r.priorCount)); err != nil {
				return err
			}
			d, _ := releaseDigest([][]float32{r.dataNorm.Mean.Value, r.dataNorm.Var.Value}, true)
			if err := r.journalRelease(journalEvent{N: int64(r.ledger.Len()), Event: "data_norm", Release: d}); err != nil {
				return err
			}
		}
	}
	if !resumed {
		// A checkpoint at step 0: from now on a restart always resumes
		// (never silently starts over with fresh randomness).
		if err := r.saveCheckpoint(); err != nil {
			return fmt.Errorf("checkpoint at step 0: %w", err)
		}
	}
	if err := r.applyBudget(); err != nil {
		return err
	}
	if r.metrics, err = openMetrics(filepath.Join(r.opt.Out, "metrics.jsonl"), r.step, resumed); err != nil {
		return err
	}
	if err := r.checkMemory(); err != nil {
		return err
	}
	if c.Sampling == "shuffle" {
		r.sampler = &data.ShuffleSampler{N: r.n, BatchSize: c.BatchSize, Key: r.dataKey}
	} else {
		ps := data.PoissonSampler{N: r.n, Rate: r.q, Key: r.dataKey}
		if err := ps.Validate(); err != nil {
			return err
		}
		r.sampler = ps
	}
	r.progress = newProgress(r.opt.Log, r.opt.Terminal, r.totalSteps)
	r.describe()
	return nil
}

// describe logs what the run will do.
func (r *run) describe() {
	c := &r.cfg
	r.logf("dptrain: %s on %s (%d examples, %d classes), %d trainable of %d parameters", c.Model, c.TrainData, r.n, r.trainDS.NumClasses(), r.model.NumTrainable(), r.model.NumParams())
	if len(r.initSkipped) > 0 {
		r.logf("init %s: kept fresh initialisation for %v", c.Init, r.initSkipped)
	}
	if c.IsPrivate() {
		r.logf("DP-SGD: q=%.6g (B=%d), σ=%.6g, C=%g, δ=%g, %d steps (%.3g epochs), accountant %s, noise %s; planned ε = %.4g", r.q, c.BatchSize, r.sigma, c.ClipNorm, r.delta, r.totalSteps, float64(r.totalSteps)*r.q, r.kind, c.Noise, r.plannedEps)
		if c.Noise == dpsgd.ModeSeeded {
			r.logf("warning: noise: seeded — noise, batches and augmentations are derived from seed %d: every ε printed holds only while that seed stays secret (use the default, noise: secure, for a release)", c.Seed)
		}
		if r.delta >= 1/float64(r.n) {
			r.logf("warning: δ = %g ≥ 1/N (allow_large_delta): the guarantee allows releasing an example outright with probability δ", r.delta)
		}
		if c.TargetEpsilon > 0 && r.totalSteps < r.plannedSteps {
			r.logf("budget: ε=%g allows %d of the %d planned steps; stopping there", c.TargetEpsilon, r.totalSteps, r.plannedSteps)
		}
	} else {
		r.logf("non-private training (no privacy guarantee): %d steps, batch %d, sampling %s", r.totalSteps, c.BatchSize, c.Sampling)
	}
}

// checkMemory refuses a physical batch that would not fit in memory,
// estimated from a measured forward/backward of two examples (one
// augmentation each: activation memory grows linearly with the rows). For
// large inputs the probe runs on a copy of the model at about 256×256 and
// is scaled by the ratio of pixels (convolutional activations are
// proportional to H×W), so that the probe itself cannot exhaust memory.
func (r *run) checkMemory() error {
	c := &r.cfg
	perRow, err := probeRowBytes(r.model, r.modelCfg)
	if err != nil {
		return err
	}
	rows := c.PhysicalBatchSize * c.AugMultiplicity
	need := perRow * float64(rows)
	avail := memAvailable()
	if avail > 0 && need > 0.9*float64(avail) {
		fit := int(0.9 * float64(avail) / perRow / float64(c.AugMultiplicity))
		if fit < 1 {
			return fmt.Errorf("aug_multiplicity %d needs about %.1f GiB for the activations of one example (%.3g GiB per augmentation), %.1f GiB are available: use aug_multiplicity ≤ %d, or smaller images (image_size, crop_size)",
				c.AugMultiplicity, perRow*float64(c.AugMultiplicity)/(1<<30), perRow/(1<<30), float64(avail)/(1<<30), max(int(0.9*float64(avail)/perRow), 0))
		}
		return fmt.Errorf("physical_batch_size %d (×%d augmentations) needs about %.1f GiB for activations, %.1f GiB are available: use physical_batch_size ≤ %d (the logical batch is accumulated over physical batches, so results do not change)",
			c.PhysicalBatchSize, c.AugMultiplicity, need/(1<<30), float64(avail)/(1<<30), fit)
	}
	return nil
}

// probePixels is the input area above which the memory probe runs on a
// smaller copy of the model.
const probePixels = 256 * 256

// probeRowBytes measures the bytes one batch row (one augmentation of one
// example) allocates in a private forward/backward of model (built from
// cfg when nil, and only at the probe's size).
func probeRowBytes(model *nn.Model, cfg nn.ModelConfig) (float64, error) {
	ch, h, w := cfg.InputShape[0], cfg.InputShape[1], cfg.InputShape[2]
	scale := 1.0
	if model == nil && h*w <= probePixels {
		m, err := nn.NewModel(cfg)
		if err != nil {
			return 0, err
		}
		model = m
	}
	if h*w > probePixels {
		f := math.Sqrt(float64(h*w) / probePixels)
		ph, pw := max(32, int(float64(h)/f)/8*8), max(32, int(float64(w)/f)/8*8)
		small := cfg
		small.InputShape = [3]int{ch, ph, pw}
		if small.Stem == "" && (h > 64 || w > 64) {
			small.Stem = "imagenet" // the stem the full-size model has
		}
		m, err := nn.NewModel(small)
		if err != nil {
			return 0, fmt.Errorf("memory probe at %d×%d: %w", ph, pw, err)
		}
		model, h, w = m, ph, pw
		scale = float64(cfg.InputShape[1]*cfg.InputShape[2]) / float64(ph*pw)
	}
	const rows = 2
	x := tensor.New(rows, ch, h, w)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var loss nn.SoftmaxCrossEntropy
	labels := make([]int, rows)
	loss.Forward(model.Forward(x, true), labels)
	model.BackwardPerExample(loss.Backward([]float32{1}), nn.PerExampleOptions{Group: 1})
	runtime.ReadMemStats(&after)
	model.ZeroGrad()
	return scale * float64(after.TotalAlloc-before.TotalAlloc) / rows, nil
}

// checkModelMemory refuses, before anything is allocated, a model whose
// parameters (values, gradients, optimizer state, averaged copy) and fixed
// buffers would not fit in the available memory.
func checkModelMemory(mc nn.ModelConfig, c *Config) error {
	est, err := nn.EstimateModel(mc)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	copies := 2.0 // values and gradients
	switch c.Optimizer {
	case "momentum", "nesterov":
		copies++
	case "adam":
		copies += 2
	}
	if c.EMADecay > 0 {
		copies++
	}
	need := 4*copies*float64(est.Params) + float64(est.FixedBytes)
	avail := memAvailable()
	if avail > 0 && need > 0.9*float64(avail) {
		return fmt.Errorf("model %s with %d classes at %d×%d×%d inputs has %d parameters: with gradients and optimizer state they need about %.1f GiB, %.1f GiB are available: use smaller images (image_size, crop_size) or fewer classes",
			mc.Name, mc.NumClasses, mc.InputShape[0], mc.InputShape[1], mc.InputShape[2], est.Params, need/(1<<30), float64(avail)/(1<<30))
	}
	return nil
}

// checkClipRange refuses a clip norm whose noisy sums overflow float32:
// B clipped gradients of norm C plus noise of standard deviation σC must
// stay far below float32's largest value (3.4e38), or the update is Inf.
func checkClipRange(clip, sigma float64, batch int) error {
	limit := maxClipScale
	if v := clip * (float64(batch) + 10*max(sigma, 1)); v > limit || math.IsInf(v, 0) {
		return fmt.Errorf("clip_norm: %g is too large: sums of %d clipped gradients plus noise of σ·C = %g would overflow float32 (keep C·(B + 10σ) ≤ %g; clip norms are usually 0.1 to 10)", clip, batch, sigma*clip, limit)
	}
	return nil
}

// maxClipScale bounds C·(B + 10σ) (checkClipRange); tests lift it to reach
// the check that no non-finite update is ever applied.
var maxClipScale = 1e30

// memAvailable is availableMemory, replaced in tests.
var memAvailable = availableMemory

// availableMemory reads MemAvailable from /proc/meminfo (0 if unknown).
func availableMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb uint64
	for _, line := range splitLines(string(b)) {
		if n, _ := fmt.Sscanf(line, "MemAvailable: %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	return 0
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}

func (r *run) loop() error {
	c := &r.cfg
	if r.step >= r.totalSteps {
		return nil
	}
	loader, err := data.NewLoader(r.trainDS, r.tr, data.LoaderOptions{K: c.AugMultiplicity, Physical: c.PhysicalBatchSize, Key: r.dataKey})
	if err != nil {
		return err
	}
	stream := loader.Stream(r.sampler, r.step)
	defer stream.Close()
	var priv *dpsgd.PrivateStep
	var pub *dpsgd.PublicStep
	if c.IsPrivate() {
		priv = &dpsgd.PrivateStep{Model: r.model, Noise: r.noise, MaterializeBudget: c.MaterializeBudget,
			Config: dpsgd.PrivacyConfig{ClipNorm: c.ClipNorm, NoiseMultiplier: r.sigma, ExpectedBatchSize: float64(c.BatchSize), PerLayerClipping: c.PerLayerClipping, AugMultiplicity: c.AugMultiplicity}}
	} else {
		pub = &dpsgd.PublicStep{Model: r.model, AugMultiplicity: c.AugMultiplicity}
	}
	stepsThisRun := 0
	event := accounting.Step(r.q, r.sigma)
	if r.stopRequested() {
		// Nothing taken since the last checkpoint (resumed or step 0).
		return &InterruptedError{Step: r.step, TotalSteps: r.totalSteps, Checkpoint: r.ckptDir}
	}
	for r.step < r.totalSteps {
		if r.maxLedgerSteps > 0 && int64(r.ledger.Len())-r.priorLen() >= r.maxLedgerSteps {
			// applyBudget ends the run before this; never step past ε.
			return fmt.Errorf("internal: step %d would take the ledger past the budget ε=%g (%d steps recorded)", r.step+1, c.TargetEpsilon, int64(r.ledger.Len())-r.priorLen())
		}
		t0 := time.Now()
		if priv != nil {
			priv.Begin()
		} else {
			pub.Begin()
		}
		for {
			b, err := stream.Next()
			if err != nil {
				return err
			}
			if b.Step != r.step {
				return fmt.Errorf("internal: data for step %d while at step %d", b.Step, r.step)
			}
			rows := b.N * b.K
			x := tensor.FromData(b.X[:rows*b.C*b.H*b.W], rows, b.C, b.H, b.W)
			if priv != nil {
				priv.Accumulate(x, b.Labels[:rows])
			} else {
				pub.Accumulate(x, b.Labels[:rows])
			}
			last := b.Last()
			stream.Release(b)
			if last {
				break
			}
		}
		var st dpsgd.StepStats
		if priv != nil {
			st = priv.Finish()
		} else {
			st = pub.Finish()
		}
		if st.Rows > 0 && (math.IsNaN(st.MeanLoss()) || math.IsInf(st.MeanLoss(), 0)) {
			return fmt.Errorf("step %d: training loss is %v: stopping; the last good checkpoint in %s is kept (try a lower learning_rate)", r.step, st.MeanLoss(), r.ckptDir)
		}
		release, finite := releaseDigest(r.grads, c.IsPrivate())
		if c.IsPrivate() {
			// One event per logical step, in the ledger and the journal
			// before anything derived from this step can be saved.
			if err := r.ledger.Record(event); err != nil {
				return err
			}
			if err := r.journalRelease(journalEvent{N: int64(r.ledger.Len()), Event: "step", Step: r.step + 1, Release: release}); err != nil {
				return err
			}
		}
		if !finite {
			// Never applied, recorded in a checkpoint or evaluated.
			return fmt.Errorf("step %d: the update is not finite (Inf or NaN in the noisy gradient sum, e.g. clip_norm·noise_multiplier beyond float32's range or an overflowing model): stopping without applying it; the last good checkpoint in %s is kept", r.step+1, r.ckptDir)
		}
		lr := r.sched.LR(r.step)
		r.optim.Step(r.params, r.grads, lr)
		if r.ema != nil {
			r.ema.Update(r.params)
		}
		r.step++
		stepsThisRun++
		secs := time.Since(t0).Seconds()
		epsRDP := math.NaN()
		if c.IsPrivate() {
			epsRDP, _ = r.ledger.Epsilon("rdp", r.delta)
		}
		if err := r.metrics.step(r.step, st, lr, secs, epsRDP, r.wallSeconds()); err != nil {
			return r.stopOnWriteError(err)
		}
		r.progress.update(r.step, st, float64(st.Examples)/secs, epsRDP, r.c().LogEvery, r.logf)
		final := r.step == r.totalSteps
		if c.EvalEvery > 0 && r.step%int64(c.EvalEvery) == 0 && !final && r.testDS != nil {
			if err := r.evaluate(false); err != nil {
				return err
			}
		}
		interrupted := !final && r.stopRequested()
		if r.step%int64(c.CheckpointEvery) == 0 || final || interrupted {
			if err := r.saveCheckpoint(); err != nil {
				return fmt.Errorf("checkpoint at step %d: %w; stopping: the previous checkpoint in %s is kept (rerun the same command to resume from it once the cause is fixed)", r.step, err, r.ckptDir)
			}
		}
		if interrupted {
			return &InterruptedError{Step: r.step, TotalSteps: r.totalSteps, Checkpoint: r.ckptDir}
		}
		if r.opt.StopAfter > 0 && stepsThisRun >= r.opt.StopAfter && !final {
			return ErrStopped
		}
	}
	return nil
}

func (r *run) c() *Config { return &r.cfg }

// stopOnWriteError words a failed write of the run's files (a full disk):
// the run stops, the newest checkpoint stays valid, the journal has every
// release.
func (r *run) stopOnWriteError(err error) error {
	return fmt.Errorf("%w: stopping at step %d; the newest checkpoint in %s is kept and the privacy journal is complete: free space and rerun the same command to resume", err, r.step, r.ckptDir)
}

// withEvalWeights runs fn with the EMA weights in the model when averaging
// is on (post-processing: free in privacy), restoring the trained weights
// afterwards.
func (r *run) withEvalWeights(fn func() error) error {
	if r.ema == nil {
		return fn()
	}
	backup := make([][]float32, len(r.params))
	for i, p := range r.params {
		backup[i] = append([]float32(nil), p...)
		copy(p, r.ema.Params()[i])
	}
	defer func() {
		for i, p := range r.params {
			copy(p, backup[i])
		}
	}()
	return fn()
}

type evalPoint struct {
	Step int64       `json:"step"`
	Eval *EvalResult `json:"eval"`
}

func (r *run) evaluate(final bool) error {
	var res *EvalResult
	err := r.withEvalWeights(func() error {
		var err error
		res, err = Evaluate(r.model, r.testDS, r.tr, r.cfg.PhysicalBatchSize)
		return err
	})
	if err != nil {
		return err
	}
	eps := math.NaN()
	if r.cfg.IsPrivate() {
		if eps, err = r.ledger.Epsilon(r.kind, r.delta); err != nil {
			return err
		}
	}
	r.evals = append(r.evals, evalPoint{r.step, res})
	if err := r.metrics.eval(r.step, res, eps); err != nil {
		return r.stopOnWriteError(err)
	}
	r.logf("eval at step %d: test accuracy %.2f%% (top-5 %.2f%%), loss %.4f%s", r.step, 100*res.Top1, 100*res.Top5, res.Loss, epsText(eps, r.delta))
	return nil
}

func epsText(eps, delta float64) string {
	if math.IsNaN(eps) {
		return ""
	}
	return fmt.Sprintf(", ε=%.4g (δ=%g)", eps, delta)
}

// Summary is summary.json.
type Summary struct {
	TestAccuracy    float64 `json:"test_accuracy"`
	TestTop5        float64 `json:"test_top5"`
	TestLoss        float64 `json:"test_loss"`
	Epsilon         float64 `json:"epsilon"`
	EpsilonRDP      float64 `json:"epsilon_rdp"`
	RDPOrder        float64 `json:"rdp_order"`
	Delta           float64 `json:"delta"`
	Accountant      string  `json:"accountant"`
	NoiseMultiplier float64 `json:"noise_multiplier"`
	SamplingRate    float64 `json:"sampling_rate"`
	Steps           int64   `json:"steps"`
	Epochs          float64 `json:"epochs"`
	WallSeconds     float64 `json:"wall_seconds"`
	Private         bool    `json:"private"`
	Sampling        string  `json:"sampling"`
	NoiseMode       string  `json:"noise_mode,omitempty"`
	// EpsilonConditionalOnSecretSeed is true in seeded mode: ε then holds
	// only while the seed stays secret (see Guarantee.Conditions).
	EpsilonConditionalOnSecretSeed bool `json:"epsilon_conditional_on_secret_seed"`
	// LostSteps were taken, lost in a crash and counted as spent.
	LostSteps     int64       `json:"lost_steps,omitempty"`
	Guarantee     *Guarantee  `json:"guarantee,omitempty"`
	TrainExamples int         `json:"train_examples"`
	TestExamples  int         `json:"test_examples"`
	Parameters    int         `json:"parameters"`
	Trainable     int         `json:"trainable_parameters"`
	Config        Config      `json:"config"`
	Eval          *EvalResult `json:"eval,omitempty"`
	Out           string      `json:"out"`
}

func (r *run) finish() (*Summary, error) {
	c := &r.cfg
	r.progress.clear()
	s := &Summary{Steps: r.step, Epochs: float64(r.step) * r.q, Private: c.IsPrivate(), Sampling: r.sampler0(),
		TrainExamples: r.n, Parameters: r.model.NumParams(), Trainable: r.model.NumTrainable(), Config: *c, Out: r.opt.Out,
		Epsilon: math.NaN(), EpsilonRDP: math.NaN(), TestAccuracy: math.NaN()}
	if r.testDS != nil {
		if err := r.evaluate(true); err != nil {
			return nil, err
		}
		e := r.evals[len(r.evals)-1].Eval
		s.Eval, s.TestAccuracy, s.TestTop5, s.TestLoss, s.TestExamples = e, e.Top1, e.Top5, e.Loss, e.Examples
	}
	if c.IsPrivate() {
		var err error
		if s.Epsilon, err = r.ledger.Epsilon(r.kind, r.delta); err != nil {
			return nil, err
		}
		rdp, _ := r.ledger.Accountant("rdp")
		if ra, ok := rdp.(*accounting.RDP); ok {
			s.EpsilonRDP, s.RDPOrder, _ = ra.EpsilonAndOrder(r.delta)
		}
		s.Delta, s.Accountant, s.NoiseMultiplier, s.SamplingRate, s.NoiseMode = r.delta, r.kind, r.sigma, r.q, r.noise.Mode()
		s.EpsilonConditionalOnSecretSeed = s.NoiseMode == dpsgd.ModeSeeded
		s.LostSteps = r.lostSteps
		s.Guarantee = r.guarantee(s)
	}
	s.WallSeconds = r.wallSeconds()
	if err := writeJSON(filepath.Join(r.opt.Out, "summary.json"), s); err != nil {
		return nil, err
	}
	if err := writePlots(r.opt.Out, filepath.Join(r.opt.Out, "metrics.jsonl")); err != nil {
		r.logf("warning: plots: %v", err)
	}
	if err := writeReport(filepath.Join(r.opt.Out, "report.md"), s, r); err != nil {
		return nil, err
	}
	return s, nil
}

func (r *run) sampler0() string {
	if r.sampler != nil {
		return r.sampler.Describe()
	}
	return r.cfg.Sampling
}

// writeJSON writes v atomically (temporary file, fsync, rename). NaN values
// are written as null.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(nanToNull(v), "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

func writeFileAtomic(path string, b []byte) error { return checkpoint.WriteFileAtomic(path, b) }
