package train

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dptrain/internal/synthdata"
)

// featureConfig is a short seeded private run of cnn-cifar that trains its
// last layer only, with flips and two augmentations per example.
func featureConfig(t *testing.T, cache string) Config {
	return featureConfigFor(t, cache, "cnn-cifar")
}

// featureConfigFor is featureConfig for another model ("resnet18/batch":
// resnet18 with frozen-statistics BatchNorm).
func featureConfigFor(t *testing.T, cache, model string) Config {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cifar")
	if err := synthdata.WriteCIFAR10(dir, 200, 40, 2); err != nil {
		t.Fatal(err)
	}
	var c Config
	yml := `
model: cnn-cifar
train_data: cifar10:` + dir + `
test_data: cifar10:` + dir + `
train_last_layer_only: true
flip: true
aug_multiplicity: 2
batch_size: 16
physical_batch_size: 10
steps: 12
clip_norm: 1
noise_multiplier: 1
learning_rate: 0.5
noise: seeded
seed: 3
`
	if err := ParseConfig([]byte(yml), &c); err != nil {
		t.Fatal(err)
	}
	c.FeatureCache = cache
	c.Model, c.Norm, _ = strings.Cut(model, "/")
	if c.Model != "cnn-cifar" {
		c.Steps, c.MaxTrainExamples, c.MaxTestExamples = 3, 64, 16
	}
	return c
}

// TestFeatureCacheMatchesUncachedRun: training the last layer on cached
// features of the frozen prefix (float16, both flip variants) follows the
// uncached run: the same batches and flips, the same ledger and ε, the
// same weights up to the float16 rounding of the features; a second run
// reuses the caches without computing them again.
func TestFeatureCacheMatchesUncachedRun(t *testing.T) {
	models := []string{"cnn-cifar"}
	if !testing.Short() {
		// ResNet-18 with frozen BatchNorm (folded at extraction): ~40 s on
		// 2 cores; nn's BatchNorm and fold tests cover its parts in -short.
		models = append(models, "resnet18/batch")
	}
	for _, model := range models {
		t.Run(strings.ReplaceAll(model, "/", "-"), func(t *testing.T) { checkFeatureCache(t, model) })
	}
}

func checkFeatureCache(t *testing.T, model string) {
	cache := filepath.Join(t.TempDir(), "features")
	plain := filepath.Join(t.TempDir(), "plain")
	if _, err := Run(featureConfigFor(t, "", model), Options{Out: plain}); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cached := filepath.Join(t.TempDir(), "cached")
	if _, err := Run(featureConfigFor(t, cache, model), Options{Out: cached, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "computing train features of") || !strings.Contains(log.String(), "images × 2 variants") || !strings.Contains(log.String(), "computing test features of") {
		t.Errorf("log does not show the extraction:\n%s", log.String())
	}
	if model == "resnet18/batch" && !strings.Contains(log.String(), "20 frozen BatchNorms folded") {
		t.Errorf("the BatchNorms were not folded for extraction:\n%s", log.String())
	}
	wa, sa := finalWeights(t, plain)
	wb, sb := finalWeights(t, cached)
	if sa.Epsilon != sb.Epsilon || sa.Steps != sb.Steps {
		t.Errorf("ε %v / %v, steps %d / %d: want the same release", sa.Epsilon, sb.Epsilon, sa.Steps, sb.Steps)
	}
	for name, a := range wa {
		b := wb[name]
		var worst, scale float64
		for i := range a.Data {
			worst = math.Max(worst, math.Abs(float64(a.Data[i]-b.Data[i])))
			scale = math.Max(scale, math.Abs(float64(a.Data[i])))
		}
		// The prefix is frozen (identical); the head differs only through
		// the features' float16 rounding (relative 2^-11).
		if strings.HasPrefix(name, "fc2.") || strings.HasPrefix(name, "fc.") {
			if worst > 2e-2*scale || worst == 0 {
				t.Errorf("%s: max |Δ| %.3g of %.3g: want a small, float16-sized difference", name, worst, scale)
			}
		} else if worst != 0 {
			t.Errorf("%s (frozen): changed by %.3g", name, worst)
		}
	}
	if math.Abs(float64(sa.TestAccuracy-sb.TestAccuracy)) > 0.05 {
		t.Errorf("test accuracy %.3f cached, %.3f uncached", sb.TestAccuracy, sa.TestAccuracy)
	}
	log.Reset()
	again := filepath.Join(t.TempDir(), "again")
	if _, err := Run(featureConfigFor(t, cache, model), Options{Out: again, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "computing") || !strings.Contains(log.String(), "train features from") {
		t.Errorf("the second run did not reuse the caches:\n%s", log.String())
	}
	wc, _ := finalWeights(t, again)
	for name, b := range wb {
		for i := range b.Data {
			if b.Data[i] != wc[name].Data[i] {
				t.Fatalf("%s: the run from reused caches differs from the one that built them", name)
			}
		}
	}
	es, _ := os.ReadDir(cache)
	if len(es) != 2 {
		t.Errorf("cache folder holds %d entries, want the train and test caches", len(es))
	}
}

// TestFeatureCacheRefusals: random crops, nothing frozen and data
// normalisation are refused with the reason.
func TestFeatureCacheRefusals(t *testing.T) {
	cache := t.TempDir()
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"random crops", func(c *Config) { c.Crop, c.CropPadding = "random", 4 }, "draws random crops"},
		{"nothing frozen", func(c *Config) { c.TrainLastLayerOnly = false }, "no frozen prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := featureConfig(t, cache)
			tc.edit(&c)
			_, err := Run(c, Options{Out: filepath.Join(t.TempDir(), "out")})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
