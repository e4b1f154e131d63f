package train

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"

	"dptrain/nn"
	"dptrain/tensor"
)

// checkMemory refuses a physical batch that would not fit in memory,
// estimated from a measured forward/backward of two examples (one
// augmentation each: activation memory grows linearly with the rows). For
// large inputs the probe runs on a copy of the model at about 256×256 and
// is scaled by the ratio of pixels (convolutional activations are
// proportional to H×W), so that the probe itself cannot exhaust memory.
func (r *run) checkMemory() error {
	c := &r.cfg
	perRow, err := probeRowBytes(r.model.model, r.model.cfg)
	if err != nil {
		return err
	}
	rows := c.PhysicalBatchSize * c.AugMultiplicity
	need := perRow * float64(rows)
	avail := memAvailable()
	if avail > 0 && need > 0.9*float64(avail) {
		fit := int(0.9 * float64(avail) / perRow / float64(c.AugMultiplicity))
		if fit < 1 {
			return fmt.Errorf("aug_multiplicity %d needs about %.1f GiB for the activations of one example (%.3g GiB per augmentation), %.1f GiB are available: use aug_multiplicity ≤ %d, or smaller images (image_size, crop_size)",
				c.AugMultiplicity, perRow*float64(c.AugMultiplicity)/(1<<30), perRow/(1<<30), float64(avail)/(1<<30), max(int(0.9*float64(avail)/perRow), 0))
		}
		return fmt.Errorf("physical_batch_size %d (×%d augmentations) needs about %.1f GiB for activations, %.1f GiB are available: use physical_batch_size ≤ %d (the logical batch is accumulated over physical batches, so results do not change)",
			c.PhysicalBatchSize, c.AugMultiplicity, need/(1<<30), float64(avail)/(1<<30), fit)
	}
	return nil
}

// probePixels is the input area above which the memory probe runs on a
// smaller copy of the model.
const probePixels = 256 * 256

// probeRowBytes measures the bytes one batch row (one augmentation of one
// example) allocates in a private forward/backward of model (built from
// cfg when nil, and only at the probe's size).
func probeRowBytes(model *nn.Model, cfg nn.ModelConfig) (float64, error) {
	ch, h, w := cfg.InputShape[0], cfg.InputShape[1], cfg.InputShape[2]
	scale := 1.0
	if model == nil && h*w <= probePixels {
		m, err := nn.NewModel(cfg)
		if err != nil {
			return 0, err
		}
		model = m
	}
	if h*w > probePixels {
		f := math.Sqrt(float64(h*w) / probePixels)
		ph, pw := max(32, int(float64(h)/f)/8*8), max(32, int(float64(w)/f)/8*8)
		small := cfg
		small.InputShape = [3]int{ch, ph, pw}
		if small.Stem == "" && (h > 64 || w > 64) {
			small.Stem = "imagenet" // the stem the full-size model has
		}
		m, err := nn.NewModel(small)
		if err != nil {
			return 0, fmt.Errorf("memory probe at %d×%d: %w", ph, pw, err)
		}
		model, h, w = m, ph, pw
		scale = float64(cfg.InputShape[1]*cfg.InputShape[2]) / float64(ph*pw)
	}
	const rows = 2
	x := tensor.New(rows, ch, h, w)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var loss nn.SoftmaxCrossEntropy
	labels := make([]int, rows)
	loss.Forward(model.Forward(x, true), labels)
	model.BackwardPerExample(loss.Backward([]float32{1}), nn.PerExampleOptions{Group: 1})
	runtime.ReadMemStats(&after)
	model.ZeroGrad()
	return scale * float64(after.TotalAlloc-before.TotalAlloc) / rows, nil
}

// checkModelMemory refuses, before anything is allocated, a model whose
// parameters (values, gradients, optimizer state, averaged copy) and fixed
// buffers would not fit in the available memory.
func checkModelMemory(mc nn.ModelConfig, c *Config) error {
	est, err := nn.EstimateModel(mc)
	if err != nil {
		return fmt.Errorf("model: %w", err)
	}
	copies := 2.0 // values and gradients
	switch c.Optimizer {
	case "momentum", "nesterov":
		copies++
	case "adam":
		copies += 2
	}
	if c.EMADecay > 0 {
		copies++
	}
	need := 4*copies*float64(est.Params) + float64(est.FixedBytes)
	avail := memAvailable()
	if avail > 0 && need > 0.9*float64(avail) {
		return fmt.Errorf("model %s with %d classes at %d×%d×%d inputs has %d parameters: with gradients and optimizer state they need about %.1f GiB, %.1f GiB are available: use smaller images (image_size, crop_size) or fewer classes",
			mc.Name, mc.NumClasses, mc.InputShape[0], mc.InputShape[1], mc.InputShape[2], est.Params, need/(1<<30), float64(avail)/(1<<30))
	}
	return nil
}

// memAvailable is availableMemory, replaced in tests.
var memAvailable = availableMemory

// availableMemory reads MemAvailable from /proc/meminfo (0 if unknown).
func availableMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb uint64
	for _, line := range strings.Split(string(b), "\n") {
		if n, _ := fmt.Sscanf(line, "MemAvailable: %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	return 0
}
