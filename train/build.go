package train

import (
	"fmt"

	"dptrain/nn"
	"dptrain/optim"
)

// built is the model of a run with what it trains.
type built struct {
	model *nn.Model
	cfg   nn.ModelConfig
	train trainable
	// dataNorm is the model's data-normalisation layer (feature_norm:
	// data), at index dataNormIdx of its top level; nil otherwise.
	dataNorm    *nn.Standardize
	dataNormIdx int
	// initSkipped lists the parameters init left at their fresh values.
	initSkipped []string
}

// buildModel builds, validates and initialises the model of c for images
// of shape in (after the transform) and the given number of classes:
// weights from init, frozen layers, the data-normalisation layer.
func buildModel(c Config, in [3]int, classes int) (built, error) {
	b := built{cfg: nn.ModelConfig{Name: c.Model, NumClasses: classes, InputShape: in, Stem: c.Stem,
		WS: c.WeightStandardization, FeatureNorm: c.FeatureNorm, Norm: c.Norm, BatchNormEps: c.BatchNormEps, Seed: c.Seed}}
	if err := checkModelMemory(b.cfg, &c); err != nil {
		return b, err
	}
	var err error
	if b.model, err = nn.NewModel(b.cfg); err != nil {
		return b, fmt.Errorf("model: %w", err)
	}
	if err := nn.Validate(b.model); err != nil {
		return b, err
	}
	if c.FeatureNorm == "data" {
		if b.dataNorm, b.dataNormIdx = findStandardize(b.model); b.dataNorm == nil {
			return b, fmt.Errorf("feature_norm: data: model %s has no data-normalisation layer", c.Model)
		}
	}
	if c.Init != "" {
		if b.initSkipped, err = initFrom(b.model, c.Init); err != nil {
			return b, err
		}
	}
	if c.FreezeLayers > 0 {
		if err := b.model.FreezeLayers(c.FreezeLayers); err != nil {
			return b, fmt.Errorf("freeze_layers: %w", err)
		}
	}
	if len(c.Freeze) > 0 {
		if err := b.model.FreezePrefixes(c.Freeze); err != nil {
			return b, err
		}
	}
	if c.TrainLastLayerOnly {
		if err := b.model.TrainLastLayerOnly(); err != nil {
			return b, err
		}
	}
	if b.model.NumTrainable() == 0 {
		return b, fmt.Errorf("freeze, freeze_layers: every parameter of model %s is frozen: nothing to train", c.Model)
	}
	b.train = trainableOf(b.model)
	return b, nil
}

// trainable is the model's parameters that are not frozen, as the
// optimizer sees them: values, gradients, sizes and the weight-decay mask.
type trainable struct {
	params, grads [][]float32
	sizes         []int
	decay         []bool
}

func trainableOf(m *nn.Model) trainable {
	var t trainable
	for _, p := range m.Params() {
		if !p.Frozen {
			t.params = append(t.params, p.Value)
			t.grads = append(t.grads, p.Grad)
			t.sizes = append(t.sizes, len(p.Value))
			t.decay = append(t.decay, !p.NoDecay)
		}
	}
	return t
}

// trainer is the non-private half of a step: the optimizer, its
// learning-rate schedule and the moving average of the weights.
type trainer struct {
	optim optim.Optimizer
	sched optim.Schedule
	ema   *optim.EMA // nil without averaging
}

// buildTrainer builds the optimizer, the schedule sc and the EMA of c for
// the trainable parameters t.
func buildTrainer(c Config, t trainable, sc optim.ScheduleConfig) (trainer, error) {
	var tr trainer
	oc := optim.DefaultConfig(optim.Kind(c.Optimizer))
	if c.Momentum != 0 {
		oc.Momentum = c.Momentum
	}
	oc.WeightDecay = c.WeightDecay
	var err error
	if tr.optim, err = optim.New(oc, t.sizes, t.decay); err != nil {
		return tr, err
	}
	if tr.sched, err = sc.Build(); err != nil {
		return tr, fmt.Errorf("learning-rate schedule: %w", err)
	}
	if c.EMADecay > 0 {
		warmup := c.EMAWarmup == nil || *c.EMAWarmup
		if tr.ema, err = optim.NewEMA(t.params, c.EMADecay, warmup); err != nil {
			return tr, err
		}
	}
	return tr, nil
}
