package train

import (
	"encoding/json"
	"errors"
	"fmt"

	"dptrain/data"
	"dptrain/nn"
	"dptrain/optim"
)

// checkEvalClasses accepts evaluation data whose classes are the model's
// (names, in order) or a leading part of them (e.g. an idx test file that
// holds only labels 0…4 of a 10-class model): each label then means the
// same class to the data and the model.
func checkEvalClasses(have, model []string, numClasses int) error {
	if len(have) > numClasses {
		return fmt.Errorf("%d classes, the model has %d", len(have), numClasses)
	}
	if len(model) == 0 {
		return nil
	}
	for i, c := range have {
		if i >= len(model) || c != model[i] {
			return fmt.Errorf("class %d is %q, the model's class %d is %q: expected the model's classes %v or a leading part of them", i, c, i, model[min(i, len(model)-1)], model)
		}
	}
	return nil
}

// EvalOptions says what EvalCheckpoint evaluates.
type EvalOptions struct {
	// Checkpoint is a checkpoint folder, or a run's --out folder (its
	// newest valid checkpoint).
	Checkpoint string
	// Data is a data spec (e.g. mnist:DIR) and Split the split to read
	// from it ("test" when empty).
	Data, Split string
	// RawWeights evaluates the trained weights even when the checkpoint
	// holds their moving average (by default the average is used).
	RawWeights bool
}

// EvalCheckpoint evaluates a checkpoint on a data set, with the EMA weights
// when the checkpoint has them (unless o.RawWeights).
func EvalCheckpoint(o EvalOptions) (*EvalCheckpointResult, error) {
	path, spec, split, useEMA := o.Checkpoint, o.Data, o.Split, !o.RawWeights
	if split == "" {
		split = "test"
	}
	ck, p, err := openCheckpoint(path)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	var st runState
	if err := json.Unmarshal(ck.Blobs["state.json"], &st); err != nil {
		return nil, fmt.Errorf("checkpoint %s: state.json: %w", p, err)
	}
	var cfg Config
	if err := ParseConfig(ck.Blobs["config.yaml"], &cfg); err != nil {
		return nil, fmt.Errorf("checkpoint %s: config.yaml: %w", p, err)
	}
	m, err := nn.NewModel(st.Model)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", p, err)
	}
	if err := loadWeights(m, ck.Tensors["weights"], true); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", p, err)
	}
	if cfg.FreezeLayers > 0 {
		if err := m.FreezeLayers(cfg.FreezeLayers); err != nil {
			return nil, err
		}
	}
	if cfg.TrainLastLayerOnly {
		if err := m.TrainLastLayerOnly(); err != nil {
			return nil, err
		}
	}
	res := &EvalCheckpointResult{Checkpoint: p, Step: ck.Step, Weights: "raw"}
	if ema, ok := ck.Tensors["ema"]; ok && useEMA {
		avg := groupState(ema)
		i := 0
		for _, prm := range m.Params() {
			if prm.Frozen {
				continue
			}
			t, ok := avg[optim.EMATensorName(i)]
			if !ok || len(t) != len(prm.Value) {
				return nil, fmt.Errorf("checkpoint %s: EMA tensor %d (for %s) missing or of another size", p, i, prm.Name)
			}
			copy(prm.Value, t)
			i++
		}
		res.Weights = "ema"
	}
	ds, err := data.Open(spec, split, data.OpenOptions{ImageSize: cfg.ImageSize, Classes: st.Classes})
	if err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	defer ds.Close()
	if err := checkEvalClasses(ds.Classes(), st.Classes, st.Model.NumClasses); err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	if err := checkLabels(ds, st.Model.NumClasses); err != nil {
		return nil, fmt.Errorf("--data %s: %w (the model has %d classes)", spec, err, st.Model.NumClasses)
	}
	c, h, w := ds.Shape()
	cfg.Normalize = st.Normalize
	tr, err := transform(&cfg, c, h, w)
	if err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	if err := tr.Validate(c, h, w); err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	if oc, oh, ow := tr.OutShape(c, h, w); [3]int{oc, oh, ow} != st.Model.InputShape {
		in := st.Model.InputShape
		return nil, fmt.Errorf("--data %s: images %d×%d×%d become %d×%d×%d after the run's transform, but the model takes %d×%d×%d (C×H×W): evaluate on data of the training data's size and channels", spec, c, h, w, oc, oh, ow, in[0], in[1], in[2])
	}
	e, err := Evaluate(m, ds, tr, 256)
	if err != nil {
		return nil, err
	}
	if e.Examples == 0 {
		return nil, errors.New("--data " + spec + ": no examples")
	}
	res.EvalResult = *e
	return res, nil
}
