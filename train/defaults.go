package train

import (
	"math"
	"strings"
)

// The defaults of a run, in one place. Config's field comments name each
// default; withDefaults applies them. It never changes a value the user
// set, and applying it twice changes nothing.

// defaultKeepCheckpoints is keep_checkpoints' default.
const defaultKeepCheckpoints = 3

// defaultPhysicalBatch caps physical_batch_size's default, min(B, 256).
const defaultPhysicalBatch = 256

// defaultEvals is how many evaluations a run with test data makes by
// default: every ⌈steps/4⌉ steps, the last at the end.
const defaultEvals = 4

// defaultDataNormNoiseMultiplier is data_norm_noise_multiplier's default
// σ_n (private runs with feature_norm: data).
const defaultDataNormNoiseMultiplier = 8

// runFacts are what defaults depend on besides the configuration: the
// training set (its size N and image shape) and the run's length.
type runFacts struct {
	N       int   // training examples
	C, H, W int   // image shape (channels, height, width)
	Steps   int64 // the steps this run will take (0: not known yet)
}

// withDefaults returns c with every default applied. The cadence defaults
// (checkpoint_every, log_every) need f.Steps and are left unset while it
// is 0. c itself is not modified (Config is a value; its one pointer
// fields, private and ema_warmup, are only read).
func (c Config) withDefaults(f runFacts) Config {
	if c.Audit != nil {
		a := *c.Audit // never the caller's
		a.withDefaults()
		c.Audit = &a
	}
	if c.AugMultiplicity == 0 {
		c.AugMultiplicity = 1
	}
	if c.KeepCheckpoints == 0 {
		c.KeepCheckpoints = defaultKeepCheckpoints
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
			c.DataNormNoiseMultiplier = defaultDataNormNoiseMultiplier
		}
		if c.Accountant == "" {
			c.Accountant = "pld"
		}
		if c.Noise == "" {
			c.Noise = "secure"
		}
		if c.Delta == 0 && f.N > 0 {
			c.Delta = DefaultDelta(f.N)
		}
	}
	if c.PhysicalBatchSize == 0 {
		c.PhysicalBatchSize = min(c.BatchSize, defaultPhysicalBatch)
	}
	if c.Normalize == "" && f.C > 0 {
		c.Normalize = defaultNormalize(c.TrainData, f.C, f.H)
	}
	if f.Steps > 0 {
		if c.CheckpointEvery == 0 {
			c.CheckpointEvery = int(max(1, f.Steps/20))
		}
		if c.LogEvery == 0 {
			c.LogEvery = int(max(1, f.Steps/50))
		}
		if c.EvalEvery == 0 && c.TestData != "" {
			// The test set is public: evaluating it costs no privacy.
			c.EvalEvery = int((f.Steps + defaultEvals - 1) / defaultEvals)
		}
	}
	return c
}

// defaultNormalize is normalize's default for a data spec with images of
// c channels and height h: the data set's own statistics where the scheme
// names it, CIFAR-10's for small colour images, ImageNet's for larger
// ones, none for grey images of unknown origin.
func defaultNormalize(spec string, c, h int) string {
	scheme, _, _ := strings.Cut(spec, ":")
	switch {
	case scheme == "mnist":
		return "mnist"
	case scheme == "cifar100":
		return "cifar100"
	case scheme == "cifar10" || (c == 3 && h <= 64):
		return "cifar10"
	case c == 3:
		return "imagenet"
	}
	return "none"
}

// DefaultDelta returns the largest power of ten below 1/N (δ < 1/N, the
// usual requirement: δ = 1/N would allow publishing one example outright).
func DefaultDelta(n int) float64 {
	if n <= 1 {
		return 0.1
	}
	e := math.Floor(math.Log10(1 / float64(n)))
	if math.Pow(10, e) >= 1/float64(n) {
		e--
	}
	return math.Pow(10, e)
}
