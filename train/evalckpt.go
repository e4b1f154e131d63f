package train

import (
	"errors"
	"fmt"

	"dptrain/data"
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
	inf, err := loadInference(path, useEMA)
	if err != nil {
		return nil, err
	}
	m, p, cfg := inf.model, inf.path, inf.cfg
	res := &EvalCheckpointResult{Checkpoint: p, Step: inf.step, Weights: inf.weights}
	classes, in := inf.classes, m.InputShape
	ds, err := data.Open(spec, split, data.OpenOptions{ImageSize: cfg.ImageSize, Classes: classes})
	if err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	defer ds.Close()
	if err := checkEvalClasses(ds.Classes(), classes, m.NumClasses); err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	if err := checkLabels(ds, m.NumClasses); err != nil {
		return nil, fmt.Errorf("--data %s: %w (the model has %d classes)", spec, err, m.NumClasses)
	}
	c, h, w := ds.Shape()
	tr, err := transform(&cfg, c, h, w)
	if err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	if err := tr.Validate(c, h, w); err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	if oc, oh, ow := tr.OutShape(c, h, w); [3]int{oc, oh, ow} != in && !(inf.weights == "imported" && oc == in[0]) {
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
