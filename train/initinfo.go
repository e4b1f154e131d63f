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
	mc := info.Model
	if c.Model == "" {
		c.Model = mc.Name
	}
	if c.Norm == "" {
		c.Norm = mc.Norm
	}
	if c.Stem == "" {
		c.Stem = mc.Stem
	}
	if c.BatchNormEps == 0 {
		c.BatchNormEps = mc.BatchNormEps
	}
	// The weights mean something only in the architecture they were
	// trained in: another layout with the same tensor shapes (GroupNorm for
	// BatchNorm, v1.5 strides for v1, another stem) would load silently.
	if c.Model != mc.Name || c.Norm != mc.Norm || c.Stem != mc.Stem || c.BatchNormEps != mc.BatchNormEps || c.WeightStandardization != mc.WS {
		return fmt.Errorf("init %s: the imported model is %s (norm %s, stem %s, batchnorm_eps %g, weight_standardization %v); the config asks for %s (norm %s, stem %s, batchnorm_eps %g, weight_standardization %v): leave model, norm, stem and batchnorm_eps unset to take the import's",
			path, mc.Name, mc.Norm, mc.Stem, mc.BatchNormEps, mc.WS, c.Model, c.Norm, c.Stem, c.BatchNormEps, c.WeightStandardization)
	}
	if c.Normalize == "" {
		c.Normalize = info.Normalize
	}
	return nil
}
