package train

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"dptrain/data"
	"dptrain/dist"
	"dptrain/dpsgd"
	"dptrain/internal/par"
	"dptrain/nn"
	"dptrain/optim"
	"dptrain/tensor"
)

// BenchOptions configures Bench (`dptrain bench`).
type BenchOptions struct {
	Model      string
	ImageSize  int
	Channels   int // default 3
	NumClasses int // default 10
	BatchSize  int
	Stem       string
	Steps      int // timed steps per mode (default 5), alternating between the modes, after two untimed steps of each
	Threads    int // 0: GOMAXPROCS
	// MaterializeBudget for per-example gradients (floats per layer; 0: default).
	MaterializeBudget int
	// Noise is the private step's noise source: "" or dpsgd.ModeSecure
	// (training's default, so the bench times what a run pays) or
	// dpsgd.ModeSeeded.
	Noise dpsgd.NoiseMode
	// Comm, with several ranks, times the data-parallel step: each rank
	// takes its share (dist.Partition) of the batch, the step ends with the
	// all-reduce, and examples/s counts the whole batch.
	Comm dist.Comm
}

// BenchResult is what `dptrain bench --json` prints.
type BenchResult struct {
	Model                    string            `json:"model"`
	BatchSize                int               `json:"batch_size"`
	ImageSize                int               `json:"image_size"`
	Stem                     string            `json:"stem,omitempty"`
	Threads                  int               `json:"threads"`
	Ranks                    int               `json:"ranks"`
	GEMM                     string            `json:"gemm"`
	Conv                     string            `json:"conv"`  // convolution kernels: "onednn" or "im2col"
	Noise                    string            `json:"noise"` // the private step's noise source: "secure" or "seeded"
	PrivateExamplesPerSec    float64           `json:"private_examples_per_sec"`
	NonprivateExamplesPerSec float64           `json:"nonprivate_examples_per_sec"`
	Overhead                 float64           `json:"overhead"`
	PeakRSSMiB               float64           `json:"peak_rss_mib"`
	NonprivatePeakRSSMiB     float64           `json:"nonprivate_peak_rss_mib"`
	MemoryRatio              float64           `json:"memory_ratio"`
	PrivateStepSecondsMedian float64           `json:"private_step_seconds_median"`
	NonprivateStepSecondsMed float64           `json:"nonprivate_step_seconds_median"`
	NormMethods              map[string]string `json:"norm_methods,omitempty"`
}

// Bench times training steps (forward, backward, update) of a model on
// random data, non-private and private (per-example clipping + noise) with
// the same batch and threads, and reports examples/s (median step of each
// mode, the modes' steps interleaved), their ratio and the peak resident
// memory of each mode.
func Bench(o BenchOptions) (*BenchResult, error) {
	if o.Channels == 0 {
		o.Channels = 3
	}
	if o.NumClasses == 0 {
		o.NumClasses = 10
	}
	if o.Steps <= 0 {
		o.Steps = 5
	}
	if o.BatchSize < 1 {
		return nil, fmt.Errorf("--batch-size %d must be ≥ 1", o.BatchSize)
	}
	if o.ImageSize < 1 || o.ImageSize > data.MaxImageSize {
		return nil, fmt.Errorf("--image-size %d: want 1 to %d", o.ImageSize, data.MaxImageSize)
	}
	if o.NumClasses < 2 {
		return nil, fmt.Errorf("--classes %d: want ≥ 2", o.NumClasses)
	}
	if o.Noise == "" {
		o.Noise = dpsgd.ModeSecure
	}
	noise, err := dpsgd.NewNoise(o.Noise, 1)
	if err != nil {
		return nil, fmt.Errorf("--noise: %w", err)
	}
	mc := nn.ModelConfig{Name: o.Model, NumClasses: o.NumClasses, InputShape: [3]int{o.Channels, o.ImageSize, o.ImageSize}, Stem: o.Stem, Seed: 1}
	if err := checkModelMemory(mc, &Config{Optimizer: "momentum"}); err != nil {
		return nil, err
	}
	if err := checkBenchMemory(mc, o.BatchSize); err != nil {
		return nil, err
	}
	if o.Threads > 0 {
		old := par.SetThreads(o.Threads)
		defer par.SetThreads(old)
	}
	comm := o.Comm
	if comm == nil {
		comm = dist.Single()
	}
	if o.BatchSize < comm.Size() {
		return nil, collectiveErrorf("--batch-size %d: want at least one example per rank (%d ranks)", o.BatchSize, comm.Size())
	}
	res := &BenchResult{Model: o.Model, BatchSize: o.BatchSize, ImageSize: o.ImageSize, Stem: o.Stem, Threads: par.Threads(), Ranks: comm.Size(), GEMM: tensor.Backend, Conv: convKernels(), Noise: string(o.Noise)}
	r := rand.New(rand.NewPCG(1, 1))
	x := tensor.New(o.BatchSize, o.Channels, o.ImageSize, o.ImageSize)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64())
	}
	labels := make([]int, o.BatchSize)
	for i := range labels {
		labels[i] = r.IntN(o.NumClasses)
	}
	lo, hi := dist.Partition(o.BatchSize, comm.Size(), comm.Rank())
	x, labels = x.Slice0(lo, hi), labels[lo:hi] // this rank's share
	// One model serves both modes. Peak memory is measured first, mode by
	// mode: the non-private steps alone, then the private steps on top of
	// the buffers they left (which the private figure counts too). The
	// timed steps then alternate between the modes, so that a slow phase
	// of a shared machine slows both alike instead of one of them.
	m, err := nn.NewModel(mc)
	if err != nil {
		return nil, err
	}
	t := trainableOf(m)
	opt, err := optim.New(optim.DefaultConfig(optim.KindMomentum), t.sizes, t.decay)
	if err != nil {
		return nil, err
	}
	steppers := [2]stepper{&publicStep{model: m, comm: o.Comm}, &dpsgd.PrivateStep{Model: m, Noise: noise, MaterializeBudget: o.MaterializeBudget, Comm: o.Comm,
		Config: dpsgd.PrivacyConfig{ClipNorm: 1, NoiseMultiplier: 1, ExpectedBatchSize: float64(o.BatchSize), SamplingRate: 1, AugMultiplicity: 1}}}
	step := func(s stepper) (float64, error) {
		t0 := time.Now()
		s.Begin()
		s.Accumulate(x, labels)
		if _, _, err := s.Finish(); err != nil {
			return 0, err
		}
		opt.Step(t.params, t.grads, 0.01)
		return time.Since(t0).Seconds(), nil
	}
	var rss [2]float64
	for mode, s := range steppers {
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS()
		for range 2 { // the first allocates the mode's buffers
			if _, err := step(s); err != nil {
				return nil, err
			}
		}
		rss[mode] = peakRSSMiB()
	}
	var times [2][]float64
	for range o.Steps {
		for mode, s := range steppers {
			sec, err := step(s)
			if err != nil {
				return nil, err
			}
			times[mode] = append(times[mode], sec)
		}
	}
	var med [2]float64
	for mode := range times {
		sort.Float64s(times[mode])
		med[mode] = times[mode][len(times[mode])/2]
	}
	res.NonprivateStepSecondsMed = med[0]
	res.NonprivateExamplesPerSec = float64(o.BatchSize) / med[0]
	res.NonprivatePeakRSSMiB = rss[0]
	res.PrivateStepSecondsMedian = med[1]
	res.PrivateExamplesPerSec = float64(o.BatchSize) / med[1]
	res.PeakRSSMiB = rss[1]
	res.NormMethods = map[string]string{}
	for _, l := range m.GradLayers() {
		if c, ok := l.(*nn.Conv2d); ok {
			res.NormMethods[c.W.Name] = c.NormMethod().String()
		}
	}
	res.Overhead = res.NonprivateExamplesPerSec / res.PrivateExamplesPerSec
	if res.NonprivatePeakRSSMiB > 0 {
		res.MemoryRatio = res.PeakRSSMiB / res.NonprivatePeakRSSMiB
	}
	return res, nil
}

// checkBenchMemory refuses a batch whose activations would not fit in
// memory (see probeRowBytes).
func checkBenchMemory(mc nn.ModelConfig, batch int) error {
	perRow, err := probeRowBytes(nil, mc)
	if err != nil {
		return err
	}
	need := perRow * float64(batch)
	if avail := memAvailable(); avail > 0 && need > 0.9*float64(avail) {
		return fmt.Errorf("--batch-size %d at --image-size %d needs about %.1f GiB for activations, %.1f GiB are available: use --batch-size ≤ %d or a smaller image size",
			batch, mc.InputShape[1], need/(1<<30), float64(avail)/(1<<30), int(0.9*float64(avail)/perRow))
	}
	return nil
}

// resetPeakRSS resets the kernel's peak-RSS counter (Linux; a no-op
// elsewhere) so that each mode's peak is measured on its own.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSSMiB reads VmHWM from /proc/self/status (0 when unavailable).
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// convKernels names the convolution kernels a run uses: tensor.ConvKernels,
// or "im2col" when they are turned off (DPTRAIN_CONV=im2col).
func convKernels() string {
	p, err := tensor.NewConvPlan(tensor.ConvShape{N: 1, Cin: 1, H: 3, W: 3, Cout: 1, K: 3, Stride: 1, Pad: 1})
	if p == nil || err != nil {
		return "im2col"
	}
	return tensor.ConvKernels
}
