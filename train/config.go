package train

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"dptrain/accounting"
	"dptrain/data"
	"dptrain/dpsgd"
	"dptrain/nn"
	"dptrain/optim"

	"go.yaml.in/yaml/v3"
)

// Config is everything a training run needs. It is read from YAML (flat
// snake_case keys, unknown keys are errors) and overridden by --key=value
// flags (kebab-case or snake_case). Zero values mean "default" where a
// default is documented; the defaults are applied in one place,
// withDefaults (defaults.go), and a run's summary.json and checkpoints hold
// the config with them applied.
type Config struct {
	// Model
	Model                 string `yaml:"model" json:"model"`                                   // one of nn.ModelNames(): cnn-mnist, cnn-cifar, wrn-16-4, resnet18/34/50, scatternet-linear, scatternet-cnn
	Stem                  string `yaml:"stem" json:"stem"`                                     // resnets: imagenet | cifar | "" (by image size)
	WeightStandardization bool   `yaml:"weight_standardization" json:"weight_standardization"` // WS on every convolution
	Init                  string `yaml:"init" json:"init"`                                     // checkpoint dir or .safetensors file to start from
	FreezeLayers          int    `yaml:"freeze_layers" json:"freeze_layers"`                   // freeze the first N parameterised layers
	// Freeze freezes the parameters under these names (a layer or a
	// prefix of dotted names: [conv1, bn1, layer1, layer2]).
	Freeze []string `yaml:"freeze" json:"freeze"`
	// FeatureCache is a folder for the features of the model's frozen
	// prefix (the top-level layers before the first trained one): computed
	// once per weights, data, transform and cut, stored there (float16,
	// checksummed) and reused by every later run, so that training runs
	// only the trained suffix. The transform must have fixed variants (no
	// random crops; a flip doubles the variants). "" turns caching off.
	FeatureCache string `yaml:"feature_cache" json:"feature_cache"`
	// Norm: ResNets only, group (default: GroupNorm) or batch (BatchNorm
	// with frozen statistics, as pretrained weights have; an imported
	// --init sets it).
	Norm string `yaml:"norm" json:"norm"`
	// BatchNormEps is the ε of frozen BatchNorms (0: the layout's; an
	// imported --init sets it).
	BatchNormEps       float32 `yaml:"batchnorm_eps" json:"batchnorm_eps"`
	TrainLastLayerOnly bool    `yaml:"train_last_layer_only" json:"train_last_layer_only"`
	// FeatureNorm: ScatterNet models only, "group" (default) or "data":
	// per-channel statistics of the training features, computed once
	// before training with the Gaussian mechanism (DataNorm*) and
	// accounted with the DP-SGD steps.
	FeatureNorm string `yaml:"feature_norm" json:"feature_norm"`
	// DataNormNoiseMultiplier is σ_n of the two Gaussian mechanisms that
	// release Σ clip(mean_i, C_μ) and Σ clip(meansq_i, C_s) (default 8).
	DataNormNoiseMultiplier float64 `yaml:"data_norm_noise_multiplier" json:"data_norm_noise_multiplier"`
	// DataNormMeanClip (C_μ) and DataNormSqClip (C_s) bound the L2 norm of
	// each example's vector of per-channel spatial means of x and of x²
	// (required for private runs with feature_norm: data).
	DataNormMeanClip float64 `yaml:"data_norm_mean_clip" json:"data_norm_mean_clip"`
	DataNormSqClip   float64 `yaml:"data_norm_sq_clip" json:"data_norm_sq_clip"`

	// Data
	TrainData        string `yaml:"train_data" json:"train_data"` // data spec, e.g. mnist:DIR, imagefolder:train.tar
	TestData         string `yaml:"test_data" json:"test_data"`   // optional; evaluated at the end and every eval_every steps
	ImageSize        int    `yaml:"image_size" json:"image_size"` // resize ImageFolder images on load (0: as stored)
	MaxTrainExamples int    `yaml:"max_train_examples" json:"max_train_examples"`
	MaxTestExamples  int    `yaml:"max_test_examples" json:"max_test_examples"`
	SkipBadImages    bool   `yaml:"skip_bad_images" json:"skip_bad_images"`
	Normalize        string `yaml:"normalize" json:"normalize"` // mnist | cifar10 | cifar100 | imagenet | caffe | none | "" (by data, or the imported model's)
	Crop             string `yaml:"crop" json:"crop"`           // data.Crops(): none | random | random-resized | center | center-resized
	CropPadding      int    `yaml:"crop_padding" json:"crop_padding"`
	Flip             bool   `yaml:"flip" json:"flip"`
	AugMultiplicity  int    `yaml:"aug_multiplicity" json:"aug_multiplicity"` // K (default 1)
	CropSize         int    `yaml:"crop_size" json:"crop_size"`               // output size of crops (0: input size)
	// CenterFraction is the side of centre(-resized) crops as a fraction
	// of the image's shorter side (0: 0.875, ImageNet's 224/256; 1 keeps
	// the whole image, e.g. to upsample CIFAR-10 for an ImageNet model).
	CenterFraction float64 `yaml:"center_fraction" json:"center_fraction"`

	// Batching and length
	BatchSize         int     `yaml:"batch_size" json:"batch_size"`                   // expected logical batch B = qN
	PhysicalBatchSize int     `yaml:"physical_batch_size" json:"physical_batch_size"` // examples per forward/backward (default min(B, 256))
	Epochs            float64 `yaml:"epochs" json:"epochs"`
	Steps             int     `yaml:"steps" json:"steps"`       // overrides epochs when > 0
	Sampling          string  `yaml:"sampling" json:"sampling"` // poisson (default) | shuffle (not covered by the accountant)

	// Privacy
	Private         *bool   `yaml:"private" json:"private"` // default true
	ClipNorm        float64 `yaml:"clip_norm" json:"clip_norm"`
	NoiseMultiplier float64 `yaml:"noise_multiplier" json:"noise_multiplier"`
	TargetEpsilon   float64 `yaml:"target_epsilon" json:"target_epsilon"`
	Delta           float64 `yaml:"delta" json:"delta"` // default 1/N rounded down to a power of ten
	// AllowLargeDelta accepts δ ≥ 1/N, which permits releasing an example
	// outright with probability δ: refused unless set, and then stated in
	// the report and summary.
	AllowLargeDelta  bool   `yaml:"allow_large_delta" json:"allow_large_delta"`
	Accountant       string `yaml:"accountant" json:"accountant"` // pld (default) | rdp
	PerLayerClipping bool   `yaml:"per_layer_clipping" json:"per_layer_clipping"`
	// Noise selects the randomness of a private run: secure (default:
	// noise from a CSPRNG with the floating-point-hardened sampler, batches
	// and augmentations from ChaCha8 keyed by 256 fresh bits from the OS)
	// or seeded (everything derived from seed, for reproducible
	// experiments: the guarantee then holds only while the seed is secret).
	Noise string `yaml:"noise" json:"noise"`

	// Optimisation
	Optimizer         string  `yaml:"optimizer" json:"optimizer"` // sgd | momentum (default) | nesterov | adam
	LearningRate      float64 `yaml:"learning_rate" json:"learning_rate"`
	Momentum          float64 `yaml:"momentum" json:"momentum"` // μ (0: 0.9 for momentum and nesterov)
	WeightDecay       float64 `yaml:"weight_decay" json:"weight_decay"`
	LRSchedule        string  `yaml:"lr_schedule" json:"lr_schedule"` // constant (default) | cosine | step
	WarmupEpochs      float64 `yaml:"warmup_epochs" json:"warmup_epochs"`
	WarmupSteps       int     `yaml:"warmup_steps" json:"warmup_steps"`
	FinalLR           float64 `yaml:"final_lr" json:"final_lr"`
	LRMilestones      []int   `yaml:"lr_milestones" json:"lr_milestones"` // step schedule, in steps
	LRGamma           float64 `yaml:"lr_gamma" json:"lr_gamma"`
	EMADecay          float64 `yaml:"ema_decay" json:"ema_decay"`   // 0: no averaging
	EMAWarmup         *bool   `yaml:"ema_warmup" json:"ema_warmup"` // warm-up of the EMA decay (default true)
	MaterializeBudget int     `yaml:"materialize_budget" json:"materialize_budget"`

	// Run
	Seed            uint64 `yaml:"seed" json:"seed"`
	Threads         int    `yaml:"threads" json:"threads"`
	CheckpointEvery int    `yaml:"checkpoint_every" json:"checkpoint_every"` // steps (default: about every 5% of the run)
	KeepCheckpoints int    `yaml:"keep_checkpoints" json:"keep_checkpoints"` // default 3
	// EvalEvery is the evaluation cadence in steps (0: four evaluations
	// per run, every ⌈steps/4⌉ steps). The test set is public: evaluating
	// it costs no privacy, and its results are post-processing.
	EvalEvery int `yaml:"eval_every" json:"eval_every"`
	LogEvery  int `yaml:"log_every" json:"log_every"` // non-terminal log lines (default: ~50 lines per run)

	// Audit, when set, makes the run a one-run privacy audit with canaries
	// (AuditConfig; dptrain audit sets it).
	Audit *AuditConfig `yaml:"audit" json:"audit,omitempty"`
}

// MaxAugMultiplicity bounds aug_multiplicity (K): every augmentation is a
// row of every physical batch.
const MaxAugMultiplicity = 256

// MaxThreads bounds the threads setting.
const MaxThreads = 1024

// IsPrivate reports whether DP-SGD is on (the default).
func (c *Config) IsPrivate() bool { return c.Private == nil || *c.Private }

// LoadConfigFile reads a YAML config; unknown keys are errors naming the
// file, line and key.
func LoadConfigFile(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if err := decodeYAML(b, &c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes YAML text into c (fields not mentioned keep their
// values).
func ParseConfig(text []byte, c *Config) error { return decodeYAML(text, c) }

func decodeYAML(b []byte, c *Config) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return yamlError(err)
	}
	var second yaml.Node
	if err := dec.Decode(&second); err == nil {
		return fmt.Errorf("line %d: a second YAML document (after ---): a config is one document; merge the keys into the first", second.Line)
	} else if !errors.Is(err, io.EOF) {
		return yamlError(err)
	}
	if err := checkIntegers(&doc); err != nil {
		return err
	}
	// Decode the node again through a decoder, for KnownFields.
	var canon bytes.Buffer
	enc := yaml.NewEncoder(&canon)
	if err := enc.Encode(&doc); err != nil {
		return yamlError(err)
	}
	enc.Close()
	dec = yaml.NewDecoder(&canon)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return yamlError(err)
	}
	return nil
}

// yamlError words a YAML decoding error; the list of known keys is added
// only when a key was not recognised.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.Contains(msg, "not found in type") {
		return fmt.Errorf("%s (known keys: %s)", msg, strings.Join(ConfigKeys(), ", "))
	}
	return errors.New(msg)
}

// intKeys are the Config keys of integer type (or lists of integers).
var intKeys = func() map[string]bool {
	m := map[string]bool{}
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		k := t.Field(i).Type.Kind()
		if k == reflect.Slice {
			k = t.Field(i).Type.Elem().Kind()
		}
		switch k {
		case reflect.Int, reflect.Int64, reflect.Uint64:
			m[t.Field(i).Tag.Get("yaml")] = true
		}
	}
	return m
}()

// checkIntegers refuses a non-integral number for an integer key (the YAML
// decoder would truncate batch_size: 50.5 to 50 without a word). Integral
// floats such as 5e3 are accepted.
func checkIntegers(doc *yaml.Node) error {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil // the decoder reports the shape error
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		if !intKeys[key.Value] {
			continue
		}
		vals := []*yaml.Node{val}
		if val.Kind == yaml.SequenceNode {
			vals = val.Content
		}
		for _, v := range vals {
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!float" {
				continue
			}
			f, err := strconv.ParseFloat(strings.ReplaceAll(v.Value, "_", ""), 64)
			if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
				return fmt.Errorf("line %d: %s: %s is not an integer (want a whole number)", v.Line, key.Value, v.Value)
			}
		}
	}
	return nil
}

// ConfigKeys lists the YAML keys of Config.
func ConfigKeys() []string {
	t := reflect.TypeOf(Config{})
	keys := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		keys = append(keys, t.Field(i).Tag.Get("yaml"))
	}
	sort.Strings(keys)
	return keys
}

// ApplyOverride sets one key from a command-line flag: key in kebab-case or
// snake_case, value in YAML syntax.
func (c *Config) ApplyOverride(key, value string) error {
	k := strings.ReplaceAll(key, "-", "_")
	known := false
	for _, kk := range ConfigKeys() {
		if kk == k {
			known = true
		}
	}
	if !known {
		return fmt.Errorf("unknown flag --%s (config keys, as --key=value: %s)", key, strings.Join(ConfigKeys(), ", "))
	}
	if strings.ContainsAny(value, "\n\r") {
		return fmt.Errorf("flag --%s: the value contains a line break: one value per flag (a line break would set other keys)", key)
	}
	if value == "" { // --key= resets the setting to its default (zero value)
		v := reflect.ValueOf(c).Elem()
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).Tag.Get("yaml") == k {
				v.Field(i).Set(reflect.Zero(v.Field(i).Type()))
			}
		}
		return nil
	}
	if err := decodeYAML([]byte(k+": "+value), c); err != nil {
		return fmt.Errorf("flag --%s=%s: %w", key, value, err)
	}
	return nil
}

// validate checks what can be checked before the data is opened, naming
// the key of each problem (all of them, joined). Privacy misconfiguration
// is always an error. Names (model, optimizer, schedule, …) are checked
// by the parse function of the package that defines them, so the lists
// cannot drift.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	c.validateRequired(bad)
	c.validateSizes(bad)
	c.validateAudit(bad)
	if c.IsPrivate() {
		c.validatePrivacy(bad)
	} else {
		if c.NoiseMultiplier != 0 || c.TargetEpsilon != 0 {
			bad("private: false with noise_multiplier/target_epsilon set: contradictory")
		}
		if c.Noise != "" {
			bad("noise: %q set, but private: false adds no noise", c.Noise)
		}
	}
	c.validateFeatureNorm(bad)
	c.validateOptimization(bad)
	return errors.Join(errs...)
}

type badFunc func(format string, args ...any)

// validateRequired checks the keys every run needs and the names of the
// model, crop and sampling.
func (c *Config) validateRequired(bad badFunc) {
	models := strings.Join(nn.ModelNames(), ", ")
	if c.Model == "" {
		bad("model: required (one of %s)", models)
	} else if !slices.Contains(nn.ModelNames(), c.Model) {
		bad("model: %q, want one of %s", c.Model, models)
	}
	if c.TrainData == "" {
		bad("train_data: required (e.g. mnist:DIR, cifar10:DIR, imagefolder:train.tar, prepared:DIR)")
	}
	if c.BatchSize < 1 {
		bad("batch_size: %d, want ≥ 1 (the expected logical batch)", c.BatchSize)
	}
	if math.IsNaN(c.Epochs) || math.IsInf(c.Epochs, 0) {
		bad("epochs: %g, want a finite number > 0", c.Epochs)
	} else if c.Steps < 0 || c.Epochs < 0 || (c.Steps == 0 && c.Epochs == 0) {
		bad("epochs/steps: set epochs > 0 or steps > 0 (got epochs=%g steps=%d)", c.Epochs, c.Steps)
	}
	if c.Steps > 0 && c.Epochs > 0 {
		bad("epochs and steps both set (%g, %d): set one", c.Epochs, c.Steps)
	}
	if _, err := data.ParseSampling(c.Sampling); err != nil {
		bad("sampling: %v", err)
	}
	if _, err := data.ParseCrop(c.Crop); err != nil {
		bad("crop: %v", err)
	}
}

// validateSizes checks the counts and sizes.
func (c *Config) validateSizes(bad badFunc) {
	if c.PhysicalBatchSize < 0 {
		bad("physical_batch_size: %d, want ≥ 1", c.PhysicalBatchSize)
	}
	if c.AugMultiplicity < 0 || c.AugMultiplicity > MaxAugMultiplicity {
		bad("aug_multiplicity: %d, want 1 to %d (augmentations per example; De et al. use up to 16)", c.AugMultiplicity, MaxAugMultiplicity)
	}
	px := func(what string) string { return fmt.Sprintf(what, data.MaxImageSize) }
	for _, kv := range []struct {
		key    string
		v, max int // max 0: no upper bound
		what   string
	}{
		{"image_size", c.ImageSize, data.MaxImageSize, px("0 (as stored) or 1 to %d pixels")},
		{"crop_size", c.CropSize, data.MaxImageSize, px("0 (the input size) or 1 to %d pixels")},
		{"crop_padding", c.CropPadding, data.MaxImageSize, px("0 to %d pixels")},
		{"max_train_examples", c.MaxTrainExamples, 0, "0 (all) or the number of training examples to use"},
		{"max_test_examples", c.MaxTestExamples, 0, "0 (all) or the number of test examples to use"},
		{"checkpoint_every", c.CheckpointEvery, 0, "0 (about every 5% of the run) or a number of steps"},
		{"keep_checkpoints", c.KeepCheckpoints, 0, "0 (3) or how many checkpoints to keep"},
		{"eval_every", c.EvalEvery, 0, "0 (four evaluations per run) or a number of steps"},
		{"log_every", c.LogEvery, 0, "0 (about 50 lines per run) or a number of steps"},
		{"warmup_steps", c.WarmupSteps, 0, "0 or a number of steps"},
		{"freeze_layers", c.FreezeLayers, 0, "0 or a number of layers"},
		{"materialize_budget", c.MaterializeBudget, 0, "0 (default) or a number of floats"},
	} {
		if kv.v < 0 || (kv.max > 0 && kv.v > kv.max) {
			bad("%s: %d, want %s", kv.key, kv.v, kv.what)
		}
	}
	if c.Threads < 0 || c.Threads > MaxThreads {
		bad("threads: %d, want 0 (all cores) or 1 to %d", c.Threads, MaxThreads)
	}
}

// validatePrivacy checks the keys of a private run.
func (c *Config) validatePrivacy(bad badFunc) {
	if !(c.ClipNorm > 0) {
		bad("clip_norm: %g, want > 0", c.ClipNorm)
	}
	switch {
	case c.NoiseMultiplier != 0 && c.TargetEpsilon != 0:
		bad("noise_multiplier (%g) and target_epsilon (%g) both set: give one (σ, or ε to calibrate σ for)", c.NoiseMultiplier, c.TargetEpsilon)
	case c.NoiseMultiplier == 0 && c.TargetEpsilon == 0:
		bad("noise_multiplier or target_epsilon: one is required for private training (or set private: false)")
	case c.NoiseMultiplier < 0 || math.IsNaN(c.NoiseMultiplier) || math.IsInf(c.NoiseMultiplier, 0):
		bad("noise_multiplier: %g, want a finite number > 0", c.NoiseMultiplier)
	case c.TargetEpsilon < 0 || math.IsNaN(c.TargetEpsilon) || math.IsInf(c.TargetEpsilon, 0):
		bad("target_epsilon: %g, want a finite number > 0", c.TargetEpsilon)
	}
	if c.Delta != 0 && !(c.Delta > 0 && c.Delta < 1) {
		bad("delta: %g, want in (0, 1)", c.Delta)
	}
	if c.Accountant != "" {
		if _, err := accounting.ParseKind(c.Accountant); err != nil {
			bad("accountant: %q, want one of %s", c.Accountant, strings.Join(accounting.Kinds(), ", "))
		}
	}
	if c.Noise != "" {
		if _, err := dpsgd.ParseNoiseMode(c.Noise); err != nil {
			bad("noise: %v", err)
		}
	}
	if c.Sampling == "shuffle" {
		bad("sampling: shuffle is not covered by the Poisson-sampling privacy accountant; use sampling: poisson for private training")
	}
}

// validateFeatureNorm checks feature_norm and its data_norm_* keys.
func (c *Config) validateFeatureNorm(bad badFunc) {
	switch c.FeatureNorm {
	case "", "group":
		if c.DataNormNoiseMultiplier != 0 || c.DataNormMeanClip != 0 || c.DataNormSqClip != 0 {
			bad("data_norm_*: set, but feature_norm is %q: they apply to feature_norm: data only", c.FeatureNorm)
		}
	case "data":
		if !strings.HasPrefix(c.Model, "scatternet-") {
			bad("feature_norm: data applies to the ScatterNet models, not %s", c.Model)
		}
		if c.DataNormNoiseMultiplier < 0 || math.IsNaN(c.DataNormNoiseMultiplier) || math.IsInf(c.DataNormNoiseMultiplier, 0) {
			bad("data_norm_noise_multiplier: %g, want > 0 (default 8)", c.DataNormNoiseMultiplier)
		}
		if c.IsPrivate() {
			if !(c.DataNormMeanClip > 0) || math.IsInf(c.DataNormMeanClip, 0) {
				bad("data_norm_mean_clip: %g, want > 0 (C_μ, the bound on each example's vector of channel means; required with feature_norm: data)", c.DataNormMeanClip)
			}
			if !(c.DataNormSqClip > 0) || math.IsInf(c.DataNormSqClip, 0) {
				bad("data_norm_sq_clip: %g, want > 0 (C_s, the bound on each example's vector of channel mean squares; required with feature_norm: data)", c.DataNormSqClip)
			}
		}
	default:
		bad("feature_norm: %q, want group or data", c.FeatureNorm)
	}
}

// validateOptimization checks the optimizer, the schedule and averaging.
func (c *Config) validateOptimization(bad badFunc) {
	if c.Optimizer != "" {
		if _, err := optim.ParseKind(c.Optimizer); err != nil {
			bad("optimizer: %v", err)
		}
	}
	if (c.Optimizer == string(optim.KindSGD) || c.Optimizer == string(optim.KindAdam)) && c.Momentum != 0 {
		// A config file that sets momentum for the default optimiser, with
		// --optimizer=sgd or adam on the command line, lands here.
		bad("momentum: %g is not used by optimizer %s; set momentum: 0 (adam has its own β1 = 0.9) or use optimizer momentum or nesterov", c.Momentum, c.Optimizer)
	}
	if !(c.LearningRate > 0) {
		bad("learning_rate: %g, want > 0", c.LearningRate)
	}
	if c.LRSchedule != "" {
		if _, err := optim.ParseScheduleKind(c.LRSchedule); err != nil {
			bad("lr_schedule: %v", err)
		}
	}
	if c.EMADecay < 0 || c.EMADecay >= 1 {
		bad("ema_decay: %g, want in [0, 1)", c.EMADecay)
	}
	if c.FreezeLayers > 0 && c.TrainLastLayerOnly {
		bad("freeze_layers and train_last_layer_only both set: give one")
	}
	if len(c.Freeze) > 0 && c.TrainLastLayerOnly {
		bad("freeze and train_last_layer_only both set: give one")
	}
	if math.IsNaN(c.CenterFraction) || c.CenterFraction < 0 || c.CenterFraction > 1 {
		bad("center_fraction: %g, want 0 (the default 0.875) or in (0, 1]", c.CenterFraction)
	}
	switch c.Norm {
	case "", "group", "batch":
	default:
		bad("norm: %q, want group or batch", c.Norm)
	}
}
