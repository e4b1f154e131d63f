package train

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"dptrain/checkpoint"
	"dptrain/nn"
	"dptrain/pretrained"
)

// loadWeights copies tensors into the model's parameters by name. With
// strict, every parameter must be present with its shape. Otherwise
// (transfer learning) parameters whose name is missing or whose shape
// differs (a new classification head) keep their initial values and are
// listed in the returned error-free report.
func loadWeights(m *nn.Model, ts map[string]checkpoint.Tensor, strict bool) error {
	_, err := copyWeights(m, ts, strict)
	return err
}

func copyWeights(m *nn.Model, ts map[string]checkpoint.Tensor, strict bool) (skipped []string, err error) {
	loaded := 0
	for _, p := range m.Params() {
		t, ok := ts[p.Name]
		if !ok || !slices.Equal(t.Shape, p.Shape) {
			if strict {
				return nil, fmt.Errorf("weights: parameter %s %v missing or of another shape", p.Name, p.Shape)
			}
			skipped = append(skipped, p.Name)
			continue
		}
		for _, v := range t.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("weights: parameter %s holds NaN or Inf values: expected finite weights (the file is corrupt or came from a diverged run)", p.Name)
			}
		}
		copy(p.Value, t.Data)
		loaded++
	}
	if loaded == 0 {
		return nil, fmt.Errorf("weights: no parameter of model %s found (names like %s)", m.Name, m.Params()[0].Name)
	}
	return skipped, nil
}

// initFrom loads starting weights for transfer learning from a checkpoint
// directory (its weights group), a run's --out directory (its newest
// checkpoint) or a .safetensors file.
//
// An imported model (a checkpoint of `dptrain import`) must fit: only the
// classification head (fc) may keep fresh weights (a new number of
// classes); any other parameter left out means the config names another
// architecture, normalisation or stem than the import's, and is an error
// (the weights would be silently half-used).
func initFrom(m *nn.Model, path string) (skipped []string, err error) {
	var ts map[string]checkpoint.Tensor
	var info pretrained.Info
	imported := false
	switch {
	case strings.HasSuffix(path, ".safetensors"):
		ts, _, err = checkpoint.ReadSafetensors(path)
	default:
		var ck *checkpoint.Checkpoint
		if ck, _, err = openCheckpoint(path); err == nil {
			ts = ck.Tensors["weights"]
			info, imported, err = pretrained.ReadInfo(ck)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	if skipped, err = copyWeights(m, ts, false); err != nil || !imported {
		return skipped, err
	}
	var body []string
	for _, name := range skipped {
		if !strings.HasPrefix(name, "fc.") {
			body = append(body, name)
		}
	}
	if len(body) > 0 {
		mc := info.Model
		return nil, fmt.Errorf("init %s: the imported %s (norm %s, stem %s) does not fit model %s: %d of its parameters would keep fresh weights (%s, …): use model: %s, norm: %s, stem: %s (what an unset model takes from the import)",
			path, mc.Name, mc.Norm, mc.Stem, m.Name, len(body), body[0], mc.Name, mc.Norm, mc.Stem)
	}
	return skipped, nil
}

// openCheckpoint loads a checkpoint folder, or the newest valid
// checkpoint of a run's --out folder (or of a folder of checkpoints), and
// returns it with its folder.
func openCheckpoint(path string) (*checkpoint.Checkpoint, string, error) {
	if _, err := os.Stat(filepath.Join(path, "manifest.json")); err == nil {
		ck, err := checkpoint.Load(path)
		return ck, path, err
	}
	dir := path
	if _, err := os.Stat(filepath.Join(path, "checkpoints")); err == nil {
		dir = filepath.Join(path, "checkpoints")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, "", err
	}
	ck, p, _, err := checkpoint.LoadLatest(dir)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w (expected a checkpoint folder ckpt-…, or a run's --out folder)", path, err)
	}
	return ck, p, nil
}
