package train

import (
	"fmt"
	"strings"

	"dptrain/pretrained"
)

// applyInitDefaults fills, from an imported model given as init (a
// checkpoint made by `dptrain import`), what the config leaves unset: the
// model, its normalisation layers and stem, and the input normalisation
// the weights expect. A value the config sets wins; a model of another
// family is still refused later, when its weights do not fit.
func (c *Config) applyInitDefaults() error {
	if c.Init == "" || strings.HasSuffix(c.Init, ".safetensors") {
		return nil
	}
	ck, path, err := openCheckpoint(c.Init)
	if err != nil {
		return fmt.Errorf("init %s: %w", c.Init, err)
	}
	info, ok, err := pretrained.ReadInfo(ck)
	if err != nil {
		return fmt.Errorf("init %s: %w", path, err)
	}
	if !ok {
		return nil
	}
	if c.Model == "" {
		c.Model = info.Model.Name
	}
	if c.Model == info.Model.Name {
		if c.Norm == "" {
			c.Norm = info.Model.Norm
		}
		if c.Stem == "" {
			c.Stem = info.Model.Stem
		}
	}
	if c.Normalize == "" {
		c.Normalize = info.Normalize
	}
	return nil
}
