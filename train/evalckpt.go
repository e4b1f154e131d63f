package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"dptrain/checkpoint"
	"dptrain/data"
	"dptrain/nn"
)

// loadCheckpointPath loads a checkpoint folder, or the newest valid
// checkpoint of a run's --out folder.
func loadCheckpointPath(path string) (*checkpoint.Checkpoint, string, error) {
	if _, err := os.Stat(filepath.Join(path, "manifest.json")); err == nil {
		ck, err := checkpoint.Load(path)
		return ck, path, err
	}
	dir := path
	if _, err := os.Stat(filepath.Join(path, "checkpoints")); err == nil {
		dir = filepath.Join(path, "checkpoints")
	}
	ck, p, _, err := checkpoint.LoadLatest(dir)
	if err != nil {
		return nil, "", fmt.Errorf("--checkpoint %s: %w", path, err)
	}
	return ck, p, nil
}

// EvalCheckpoint evaluates a checkpoint on a data set, with the EMA weights
// when the checkpoint has them and useEMA is set.
func EvalCheckpoint(path, spec, split string, useEMA bool) (*EvalCheckpointResult, error) {
	ck, p, err := loadCheckpointPath(path)
	if err != nil {
		return nil, err
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
		i := 0
		for _, prm := range m.Params() {
			if prm.Frozen {
				continue
			}
			t, ok := ema["ema."+strconv.Itoa(i)]
			if !ok || len(t.Data) != len(prm.Value) {
				return nil, fmt.Errorf("checkpoint %s: EMA tensor %d (for %s) missing or of another size", p, i, prm.Name)
			}
			copy(prm.Value, t.Data)
			i++
		}
		res.Weights = "ema"
	}
	ds, err := data.Open(spec, split, data.OpenOptions{ImageSize: cfg.ImageSize, Classes: st.Classes})
	if err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
	}
	if c, ok := ds.(interface{ Close() error }); ok {
		defer c.Close()
	}
	if ds.NumClasses() != st.Model.NumClasses {
		return nil, fmt.Errorf("--data %s: %d classes, the model has %d", spec, ds.NumClasses(), st.Model.NumClasses)
	}
	c, h, w := ds.Shape()
	cfg.Normalize = st.Normalize
	tr, err := transform(&cfg, c, h, w)
	if err != nil {
		return nil, err
	}
	if err := tr.Validate(c, h, w); err != nil {
		return nil, fmt.Errorf("--data %s: %w", spec, err)
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
