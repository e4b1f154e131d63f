package nn

import (
	"fmt"
	"math"

	"dptrain/scatter"
)

// ModelEstimate is what [NewModel] would allocate for a configuration,
// computed by [EstimateModel] without building anything.
type ModelEstimate struct {
	// Params is the number of parameter values (float32), frozen ones
	// included: exactly the NumParams of the model NewModel builds. Each
	// has a Value and a Grad, so they take 8·Params bytes ([ModelEstimate.ParamBytes]).
	Params int64
	// FixedBytes bounds the other memory NewModel allocates that grows with
	// the input size: the Scattering layer's filter bank, FFT plans and the
	// scratch used to build them (transient buffers included, so it bounds
	// the peak as well). It is 0 for models without a scattering front end.
	// Allocations of fixed size (layer structs, parameter names: a few KiB
	// per layer) and the allocator's rounding of parameter slices (< 8 KiB
	// per tensor) are not counted.
	FixedBytes int64
	// CacheBytes is the cap of the memo of the Scattering layer (filled
	// lazily during training, shared by the live models of the same
	// configuration in a process; see [Scattering.CacheBytes]), 0 without
	// one.
	CacheBytes int64
}

// ParamBytes is the memory of the parameters: 4 bytes per value for
// Param.Value and 4 for Param.Grad. Optimiser state (e.g. 4·Params bytes
// more for momentum) is the caller's to add.
func (e ModelEstimate) ParamBytes() int64 { return 8 * e.Params }

// Bytes is ParamBytes + FixedBytes + CacheBytes: what the built model may
// hold once its memo is full, before activations (which grow with the batch
// size) and optimiser state. EstimateModel guarantees it does not overflow.
func (e ModelEstimate) Bytes() int64 { return e.ParamBytes() + e.FixedBytes + e.CacheBytes }

// EstimateModel returns the memory NewModel(cfg) would allocate, or the
// error NewModel would return for cfg, in time and memory independent of
// the model and input sizes: a caller can refuse a configuration that does
// not fit before building it. It also rejects configurations whose sizes
// overflow int64 bytes (which NewModel cannot build either).
//
// Each model family has an estimator below mirroring its builder in
// models.go layer by layer; the validation checks are shared with the
// builders. A change to a builder must be made to its estimator too
// (TestEstimateModelParams builds every model and compares).
func EstimateModel(cfg ModelConfig) (ModelEstimate, error) {
	if _, err := checkModelConfig(cfg); err != nil {
		return ModelEstimate{}, err
	}
	est, ok := estimators[cfg.Name]
	if !ok {
		return ModelEstimate{}, fmt.Errorf("model %s: no memory estimate (nn/estimate.go must mirror every builder)", cfg.Name)
	}
	var t tally
	if err := est(cfg, &t); err != nil {
		return ModelEstimate{}, err
	}
	e := ModelEstimate{Params: t.params, FixedBytes: t.fixed, CacheBytes: t.cache}
	if t.overflow || e.Params > math.MaxInt64/8 || e.FixedBytes > math.MaxInt64-8*e.Params ||
		e.CacheBytes > math.MaxInt64-8*e.Params-e.FixedBytes {
		return ModelEstimate{}, fmt.Errorf("model %s: input %v with %d classes: the model's size overflows int64 bytes", cfg.Name, cfg.InputShape, cfg.NumClasses)
	}
	return e, nil
}

// estimators mirrors builders (models.go), one entry per model.
var estimators = map[string]func(cfg ModelConfig, t *tally) error{
	"cnn-mnist":         estimateCNNMNIST,
	"cnn-cifar":         estimateCNNCIFAR,
	"wrn-16-4":          func(c ModelConfig, t *tally) error { return estimateWRN(c, t, 16, 4) },
	"resnet18":          func(c ModelConfig, t *tally) error { return estimateResNet(c, t, resnet18) },
	"resnet34":          func(c ModelConfig, t *tally) error { return estimateResNet(c, t, resnet34) },
	"resnet50":          func(c ModelConfig, t *tally) error { return estimateResNet(c, t, resnet50) },
	"resnet50-keras":    func(c ModelConfig, t *tally) error { return estimateResNet(c, t, resnet50Keras) },
	"scatternet-linear": estimateScatterLinear,
	"scatternet-cnn":    estimateScatterCNN,
}

// Mirrors buildCNNMNIST.
func estimateCNNMNIST(cfg ModelConfig, t *tally) error {
	h2, w2, err := cnnMNISTFeatures(cfg)
	if err != nil {
		return err
	}
	t.conv(cfg.InputShape[0], 16, 8, true)
	t.conv(16, 32, 4, true)
	t.linear(t.mul(32, h2, w2), 32, true)
	t.linear(32, cfg.NumClasses, true)
	return nil
}

// Mirrors buildCNNCIFAR.
func estimateCNNCIFAR(cfg ModelConfig, t *tally) error {
	if err := checkCNNCIFAR(cfg); err != nil {
		return err
	}
	in := cfg.InputShape[0]
	for _, width := range []int{32, 64, 128} {
		t.conv(in, width, 3, true)
		t.conv(width, width, 3, true)
		in = width
	}
	t.linear(t.mul(128, cfg.InputShape[1]/8, cfg.InputShape[2]/8), 128, true)
	t.linear(128, cfg.NumClasses, true)
	return nil
}

// Mirrors buildResNet (gn(c) is an affine GroupNorm; a frozen BatchNorm
// has γ, β and the two buffers).
func estimateResNet(cfg ModelConfig, t *tally, arch resnetArch) error {
	stem, err := resNetStem(cfg)
	if err != nil {
		return err
	}
	normKind, err := resNetNorm(cfg, arch)
	if err != nil {
		return err
	}
	norm := func(c int) {
		t.groupNorm(c, true)
		if normKind == "batch" {
			t.addParams(t.mul(2, c)) // running mean and variance
		}
	}
	bias := arch.keras
	if stem == "imagenet" {
		t.conv(cfg.InputShape[0], 64, 7, bias)
	} else {
		t.conv(cfg.InputShape[0], 64, 3, bias)
	}
	norm(64)
	exp := 1
	if arch.bottleneck {
		exp = 4
	}
	in := 64
	for stage, n := range arch.blocks {
		width := 64 << stage
		for bi := 0; bi < n; bi++ {
			stride := 1
			if stage > 0 && bi == 0 {
				stride = 2
			}
			if arch.bottleneck {
				t.conv(in, width, 1, bias)
				norm(width)
				t.conv(width, width, 3, bias)
				norm(width)
				t.conv(width, width*exp, 1, bias)
				norm(width * exp)
			} else {
				t.conv(in, width, 3, bias)
				norm(width)
				t.conv(width, width, 3, bias)
				norm(width)
			}
			if stride != 1 || in != width*exp {
				t.conv(in, width*exp, 1, bias)
				norm(width * exp)
			}
			in = width * exp
		}
	}
	t.linear(int64(in), cfg.NumClasses, true)
	return nil
}

// Mirrors buildWRN.
func estimateWRN(cfg ModelConfig, t *tally, depth, k int) error {
	if err := checkWRN(cfg); err != nil {
		return err
	}
	t.conv(cfg.InputShape[0], 16, 3, false)
	in := 16
	for stage := 0; stage < 3; stage++ {
		width := 16 * k << stage
		for bi := 0; bi < (depth-4)/6; bi++ {
			stride := 1
			if stage > 0 && bi == 0 {
				stride = 2
			}
			t.groupNorm(in, true)
			t.conv(in, width, 3, false)
			t.groupNorm(width, true)
			t.conv(width, width, 3, false)
			if in != width || stride != 1 {
				t.conv(in, width, 1, false)
			}
			in = width
		}
	}
	t.groupNorm(in, true)
	t.linear(int64(in), cfg.NumClasses, true)
	return nil
}

// Mirrors scatterFront: returns the shape of its output.
func estimateScatterFront(cfg ModelConfig, t *tally) ([3]int, error) {
	if err := checkScatterFront(cfg); err != nil {
		return [3]int{}, err
	}
	c, h, w := cfg.InputShape[0], cfg.InputShape[1], cfg.InputShape[2]
	t.scattering(h, w, scatterJ, scatterL)
	t.cache += scatterCacheBytes
	out := [3]int{c * ScatteringChannels(scatterJ, scatterL), h >> scatterJ, w >> scatterJ}
	if cfg.FeatureNorm == "data" {
		t.standardize(out[0])
	} else {
		t.groupNorm(out[0], false)
	}
	return out, nil
}

// Mirrors buildScatterLinear.
func estimateScatterLinear(cfg ModelConfig, t *tally) error {
	out, err := estimateScatterFront(cfg, t)
	if err != nil {
		return err
	}
	t.linear(t.mul(out[0], out[1], out[2]), cfg.NumClasses, true)
	return nil
}

// Mirrors buildScatterCNN.
func estimateScatterCNN(cfg ModelConfig, t *tally) error {
	out, err := estimateScatterFront(cfg, t)
	if err != nil {
		return err
	}
	if err := checkScatterCNN(cfg, out); err != nil {
		return err
	}
	t.conv(out[0], 64, 3, true)
	t.conv(64, 64, 3, true)
	t.linear(t.mul(64, out[1]/2, out[2]/2), cfg.NumClasses, true)
	return nil
}

// tally adds up an estimate layer by layer, in int64 with overflow
// detection (sizes come from user input).
type tally struct {
	params, fixed, cache int64
	overflow             bool
}

// mul returns the product of non-negative xs (0 and a mark on overflow).
func (t *tally) mul(xs ...int) int64 {
	p := int64(1)
	for _, x := range xs {
		if x < 0 || (x != 0 && p > math.MaxInt64/int64(x)) {
			t.overflow = true
			return 0
		}
		p *= int64(x)
	}
	return p
}

// sum returns a + b (a, b ≥ 0), marking an overflow.
func (t *tally) sum(a, b int64) int64 {
	if b > math.MaxInt64-a {
		t.overflow = true
		return 0
	}
	return a + b
}

func (t *tally) addParams(n int64) { t.params = t.sum(t.params, n) }

// conv counts NewConv2d(cin, cout, k, bias): weight cout×cin×k×k, bias cout.
func (t *tally) conv(cin, cout, k int, bias bool) {
	t.addParams(t.mul(cout, cin, k, k))
	if bias {
		t.addParams(int64(cout))
	}
}

// linear counts NewLinear(in, out, bias): weight out×in, bias out.
func (t *tally) linear(in int64, out int, bias bool) {
	if out < 0 || (out > 0 && in > math.MaxInt64/int64(out)) {
		t.overflow = true
		return
	}
	t.addParams(in * int64(out))
	if bias {
		t.addParams(int64(out))
	}
}

// groupNorm counts NewGroupNorm(·, c, affine): γ and β (c each) when affine.
func (t *tally) groupNorm(c int, affine bool) {
	if affine {
		t.addParams(t.mul(2, c))
	}
}

// standardize counts NewStandardize(c): μ and v (frozen, c each).
func (t *tally) standardize(c int) { t.addParams(t.mul(2, c)) }

// alloc adds to FixedBytes the heap that an allocation of the product of
// dims bytes takes: small objects are rounded up to a size class (at most
// 12.5% more, plus alignment), large ones (> 32 KiB) to whole 8 KiB pages.
func (t *tally) alloc(dims ...int) {
	n := t.mul(dims...)
	if n <= 32<<10 {
		n += n/8 + 16
	} else {
		n = t.sum(n, 8191) &^ 8191
	}
	t.fixed = t.sum(t.fixed, n)
}

// scattering adds what NewScattering(·, h, w, j, l) allocates (the same for
// any number of channels: the filters are per plane). It mirrors
// NewScattering, buildFilters, newFFTPlan and newFFTScratch (scatter.go,
// scatter_fft.go), transient buffers included; the checks of
// checkScattering must have passed.
func (t *tally) scattering(h, w, j, l int) {
	const small = 2 << 10 // a struct and a short slice: plan factors, levels
	s2 := 1 << j
	m, n := (h/s2+2)*s2, (w/s2+2)*s2 // padded plane (Scattering.mp, np)
	for r := 0; r <= j; r++ {        // planM[r], planN[r]: twiddles fwd, inv
		for _, size := range []int{m >> r, n >> r} {
			t.alloc(2*16, size)
			t.fixed = t.sum(t.fixed, small)
		}
	}
	// buildFilters: buf and an fftScratch (buf, tmp) on the padded grid.
	t.alloc(16, m, n)
	t.alloc(16, m, n)
	t.alloc(16, scatter.MaxRadix, max(m, n))
	levels := max(j-1, 1)
	for jj := 0; jj < j; jj++ {
		for range l {
			// morlet2d: two gabor2d planes; fourier's real part; the
			// periodised filters kept in scatWavelet.levels.
			t.alloc(16, m, n)
			t.alloc(16, m, n)
			t.alloc(8, m, n)
			for r := 0; r < min(jj+1, levels); r++ {
				t.alloc(8, m>>r, n>>r)
			}
			t.fixed = t.sum(t.fixed, small)
		}
	}
	// φ: one gabor2d plane, its real part and the periodised filters.
	t.alloc(16, m, n)
	t.alloc(8, m, n)
	for r := 0; r < j; r++ {
		t.alloc(8, m>>r, n>>r)
	}
	t.fixed = t.sum(t.fixed, small) // the psi, phi and s2start slices
}

// checkScattering returns as an error what NewScattering(c, h, w, j, l)
// would panic with: J, L or C < 1, sizes not multiples of 2^J, inputs too
// small for the reflect padding, or padded sizes whose FFT needs a prime
// factor above scatter.MaxRadix (newFFTPlan).
func checkScattering(c, h, w, j, l int) error {
	if j < 1 || l < 1 || c < 1 || j > 30 {
		return fmt.Errorf("scattering J=%d L=%d C=%d, want all ≥ 1 (J ≤ 30)", j, l, c)
	}
	s2 := 1 << j
	if h < s2 || w < s2 || h%s2 != 0 || w%s2 != 0 {
		return fmt.Errorf("scattering input %d×%d: want multiples of 2^J = %d", h, w, s2)
	}
	// Scattering.mp, np and the padding before the first row and column.
	mp, np := (h/s2+2)*s2, (w/s2+2)*s2
	if top, lft := (mp-h)/2, (np-w)/2; top >= h || lft >= w {
		return fmt.Errorf("scattering input %d×%d too small for reflect padding by %d (want > %d×%d)", h, w, top, s2, s2)
	}
	for r := 0; r <= j; r++ {
		for _, n := range []int{mp >> r, np >> r} {
			if rest := withoutSmallFactors(n); rest > 1 {
				return fmt.Errorf("scattering input %d×%d: padded FFT length %d has a prime factor > %d (a factor of %d); choose H/%d+2 and W/%d+2 with small prime factors",
					h, w, n, scatter.MaxRadix, rest, s2, s2)
			}
		}
	}
	return nil
}

// withoutSmallFactors divides n ≥ 1 by its prime factors ≤ scatter.MaxRadix and
// returns what is left (1 when newFFTPlan accepts the length n).
func withoutSmallFactors(n int) int {
	for f := 2; f <= scatter.MaxRadix && n > 1; f++ {
		for n%f == 0 {
			n /= f
		}
	}
	return n
}
