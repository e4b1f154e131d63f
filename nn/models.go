package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"dptrain/internal/seed"
)

// ModelConfig selects and sizes a model.
type ModelConfig struct {
	Name       string // see ModelNames
	NumClasses int
	InputShape [3]int // C, H, W
	// Stem for ResNets: "imagenet" (7×7 s2 + maxpool), "cifar" (3×3 s1, no
	// maxpool) or "" (cifar for inputs ≤ 64×64, else imagenet).
	Stem string
	// WS enables weight standardisation on every convolution (always on for
	// wrn-16-4, as in De et al. 2022).
	WS bool
	// FeatureNorm selects the normalisation after the fixed front end of
	// the ScatterNet models: "group" (default: GroupNorm with 27 groups,
	// per example) or "data" (a [Standardize] layer whose per-channel
	// statistics are set from the training data before training).
	FeatureNorm string
	// Norm selects the ResNets' normalisation: "group" (default:
	// GroupNorm(min(32, C), C), trained per example) or "batch"
	// (BatchNorm with frozen statistics and trainable γ, β: the layout of
	// pretrained torchvision and Keras weights). resnet50-keras always uses
	// "batch".
	Norm string
	// BatchNormEps is the ε of the frozen BatchNorms (norm: batch); 0
	// means the layout's own: 1e-5 (torchvision), 1e-3 (resnet50-keras).
	BatchNormEps float32 `json:"batchnorm_eps,omitempty"`
	Seed         uint64
}

type modelBuilder func(cfg ModelConfig, r *rand.Rand) ([]Layer, error)

var builders = map[string]modelBuilder{
	"cnn-mnist":      buildCNNMNIST,
	"cnn-cifar":      buildCNNCIFAR,
	"wrn-16-4":       func(c ModelConfig, r *rand.Rand) ([]Layer, error) { return buildWRN(c, r, 16, 4) },
	"resnet18":       func(c ModelConfig, r *rand.Rand) ([]Layer, error) { return buildResNet(c, r, resnet18) },
	"resnet34":       func(c ModelConfig, r *rand.Rand) ([]Layer, error) { return buildResNet(c, r, resnet34) },
	"resnet50":       func(c ModelConfig, r *rand.Rand) ([]Layer, error) { return buildResNet(c, r, resnet50) },
	"resnet50-keras": func(c ModelConfig, r *rand.Rand) ([]Layer, error) { return buildResNet(c, r, resnet50Keras) },
}

// ModelNames lists the models NewModel builds.
func ModelNames() []string {
	names := make([]string, 0, len(builders))
	for n := range builders {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NewModel builds a model with freshly initialised weights from cfg.Seed.
// [EstimateModel] tells beforehand how much memory it will allocate.
func NewModel(cfg ModelConfig) (*Model, error) {
	b, err := checkModelConfig(cfg)
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(cfg.Seed, uint64(seed.ModelInit)))
	layers, err := b(cfg, r)
	if err != nil {
		return nil, err
	}
	return &Model{Name: cfg.Name, InputShape: cfg.InputShape, NumClasses: cfg.NumClasses, Layers: layers}, nil
}

// checkModelConfig returns cfg's builder after the checks common to every
// model (shared by NewModel and EstimateModel).
func checkModelConfig(cfg ModelConfig) (modelBuilder, error) {
	b, ok := builders[cfg.Name]
	if !ok {
		return nil, fmt.Errorf("model %q: unknown (known: %s)", cfg.Name, strings.Join(ModelNames(), ", "))
	}
	if cfg.NumClasses < 2 {
		return nil, fmt.Errorf("model %s: num classes %d, want ≥ 2", cfg.Name, cfg.NumClasses)
	}
	c, h, w := cfg.InputShape[0], cfg.InputShape[1], cfg.InputShape[2]
	if c < 1 || h < 1 || w < 1 {
		return nil, fmt.Errorf("model %s: input shape %v must be positive C, H, W", cfg.Name, cfg.InputShape)
	}
	if e := float64(cfg.BatchNormEps); math.IsNaN(e) || e < 0 || e > 1 {
		return nil, fmt.Errorf("model %s: batchnorm_eps %g, want 0 (the layout's) or in (0, 1]", cfg.Name, e)
	}
	return b, nil
}

// torchDefault re-initialises a convolution as PyTorch's default does for the
// small tanh CNNs: weights and bias U(±1/√fan_in).
func torchDefault(c *Conv2d, r *rand.Rand) *Conv2d {
	b := 1 / math.Sqrt(float64(c.d()))
	uniformInit(r, c.W.Value, b)
	if c.B != nil {
		uniformInit(r, c.B.Value, b)
	}
	return c
}

// cnn-mnist: the MNIST CNN of the TF Privacy and Opacus examples (26,010
// parameters for 28×28×1 inputs and 10 classes). Its parameter count is
// mirrored by estimateCNNMNIST (estimate.go).
func buildCNNMNIST(cfg ModelConfig, r *rand.Rand) ([]Layer, error) {
	c := cfg.InputShape[0]
	h2, w2, err := cnnMNISTFeatures(cfg)
	if err != nil {
		return nil, err
	}
	return []Layer{
		torchDefault(NewConv2d("conv1", c, 16, 8, 2, 3, true, cfg.WS, r), r), &Tanh{}, NewMaxPool(2, 1, 0),
		torchDefault(NewConv2d("conv2", 16, 32, 4, 2, 0, true, cfg.WS, r), r), &Tanh{}, NewMaxPool(2, 1, 0),
		&Flatten{},
		NewLinear("fc1", 32*h2*w2, 32, true, r), &Tanh{},
		NewLinear("fc2", 32, cfg.NumClasses, true, r),
	}, nil
}

// cnnMNISTFeatures returns the size of cnn-mnist's last feature maps (the
// input of fc1 is 32 of them), or an error for inputs too small.
func cnnMNISTFeatures(cfg ModelConfig) (h2, w2 int, err error) {
	h, w := cfg.InputShape[1], cfg.InputShape[2]
	h1, w1 := (h+6-8)/2+1-1, (w+6-8)/2+1-1 // conv k8 s2 p3, then maxpool 2 s1
	h2, w2 = (h1-4)/2+1-1, (w1-4)/2+1-1    // conv k4 s2, then maxpool 2 s1
	if h2 < 1 || w2 < 1 {
		return 0, 0, fmt.Errorf("model cnn-mnist: input %dx%d too small (want ≥ 28×28)", h, w)
	}
	return h2, w2, nil
}

// cnn-cifar: the tanh CNN of Papernot et al. 2021 / Tramèr & Boneh 2021
// (550,570 parameters for 32×32×3 inputs and 10 classes). Mirrored by
// estimateCNNCIFAR (estimate.go).
func buildCNNCIFAR(cfg ModelConfig, r *rand.Rand) ([]Layer, error) {
	c, h, w := cfg.InputShape[0], cfg.InputShape[1], cfg.InputShape[2]
	if err := checkCNNCIFAR(cfg); err != nil {
		return nil, err
	}
	var ls []Layer
	in := c
	for i, width := range []int{32, 64, 128} {
		ls = append(ls,
			torchDefault(NewConv2d(fmt.Sprintf("conv%d", 2*i+1), in, width, 3, 1, 1, true, cfg.WS, r), r), &Tanh{},
			torchDefault(NewConv2d(fmt.Sprintf("conv%d", 2*i+2), width, width, 3, 1, 1, true, cfg.WS, r), r), &Tanh{},
			NewMaxPool(2, 2, 0))
		in = width
	}
	ls = append(ls, &Flatten{},
		NewLinear("fc1", 128*(h/8)*(w/8), 128, true, r), &Tanh{},
		NewLinear("fc2", 128, cfg.NumClasses, true, r))
	return ls, nil
}

func checkCNNCIFAR(cfg ModelConfig) error {
	h, w := cfg.InputShape[1], cfg.InputShape[2]
	if h%8 != 0 || w%8 != 0 {
		return fmt.Errorf("model cnn-cifar: input %dx%d must be a multiple of 8 (e.g. 32×32)", h, w)
	}
	return nil
}

func gn(name string, c int) *GroupNorm { return NewGroupNorm(name, min(32, c), c, true) }

// resnetArch is one ResNet layout.
type resnetArch struct {
	bottleneck bool
	blocks     [4]int
	// keras is the Keras ResNet-50 (He et al. 2016's v1, as
	// keras.applications ships it): the stride of a downsampling
	// bottleneck is on its first 1×1 convolution (torchvision's v1.5 puts
	// it on the 3×3), every convolution has a bias, and BatchNorm has
	// ε = 1e-3.
	keras bool
}

var (
	resnet18      = resnetArch{blocks: [4]int{2, 2, 2, 2}}
	resnet34      = resnetArch{blocks: [4]int{3, 4, 6, 3}}
	resnet50      = resnetArch{bottleneck: true, blocks: [4]int{3, 4, 6, 3}}
	resnet50Keras = resnetArch{bottleneck: true, blocks: [4]int{3, 4, 6, 3}, keras: true}
)

// resNetNorm resolves cfg.Norm for arch: "group" or "batch".
func resNetNorm(cfg ModelConfig, arch resnetArch) (string, error) {
	switch {
	case arch.keras && (cfg.Norm == "" || cfg.Norm == "batch"):
		return "batch", nil
	case arch.keras:
		return "", fmt.Errorf("model %s: norm %q: this layout has BatchNorm only (norm: batch)", cfg.Name, cfg.Norm)
	case cfg.Norm == "" || cfg.Norm == "group":
		return "group", nil
	case cfg.Norm == "batch":
		return "batch", nil
	}
	return "", fmt.Errorf("model %s: norm %q, want group or batch", cfg.Name, cfg.Norm)
}

// ResNets in torchvision's layout and names (v1.5: stride on the 3×3
// convolution of bottlenecks), with GroupNorm(min(32, C), C) in place of
// every BatchNorm (norm: group) or with frozen-statistics BatchNorm
// (norm: batch, for pretrained weights); resnet50-keras is the v1 layout of
// Keras under the same names. Mirrored by estimateResNet (estimate.go).
func buildResNet(cfg ModelConfig, r *rand.Rand, arch resnetArch) ([]Layer, error) {
	c := cfg.InputShape[0]
	stem, err := resNetStem(cfg)
	if err != nil {
		return nil, err
	}
	normKind, err := resNetNorm(cfg, arch)
	if err != nil {
		return nil, err
	}
	eps := float32(1e-5)
	if arch.keras {
		eps = 1e-3
	}
	if cfg.BatchNormEps > 0 {
		eps = cfg.BatchNormEps
	}
	norm := func(name string, c int) Layer {
		if normKind == "batch" {
			return NewFrozenBatchNorm2d(name, c, eps)
		}
		return gn(name, c)
	}
	bias := arch.keras
	var ls []Layer
	if stem == "imagenet" {
		ls = append(ls, NewConv2d("conv1", c, 64, 7, 2, 3, bias, cfg.WS, r), norm("bn1", 64), &ReLU{}, NewMaxPool(3, 2, 1))
	} else {
		ls = append(ls, NewConv2d("conv1", c, 64, 3, 1, 1, bias, cfg.WS, r), norm("bn1", 64), &ReLU{})
	}
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
			name := fmt.Sprintf("layer%d.%d", stage+1, bi)
			blk := &Residual{PostReLU: true}
			if arch.bottleneck {
				s1, s3 := 1, stride // v1.5
				if arch.keras {
					s1, s3 = stride, 1 // v1
				}
				blk.Main = []Layer{
					NewConv2d(name+".conv1", in, width, 1, s1, 0, bias, cfg.WS, r), norm(name+".bn1", width), &ReLU{},
					NewConv2d(name+".conv2", width, width, 3, s3, 1, bias, cfg.WS, r), norm(name+".bn2", width), &ReLU{},
					NewConv2d(name+".conv3", width, width*exp, 1, 1, 0, bias, cfg.WS, r), norm(name+".bn3", width*exp),
				}
			} else {
				blk.Main = []Layer{
					NewConv2d(name+".conv1", in, width, 3, stride, 1, bias, cfg.WS, r), norm(name+".bn1", width), &ReLU{},
					NewConv2d(name+".conv2", width, width, 3, 1, 1, bias, cfg.WS, r), norm(name+".bn2", width),
				}
			}
			if stride != 1 || in != width*exp {
				blk.Shortcut = []Layer{
					NewConv2d(name+".downsample.0", in, width*exp, 1, stride, 0, bias, cfg.WS, r),
					norm(name+".downsample.1", width*exp),
				}
			}
			ls = append(ls, blk)
			in = width * exp
		}
	}
	ls = append(ls, &GlobalAvgPool{}, NewLinear("fc", in, cfg.NumClasses, true, r))
	return ls, nil
}

// resNetStem resolves cfg.Stem ("imagenet" or "cifar") and checks that the
// input is large enough for it.
func resNetStem(cfg ModelConfig) (string, error) {
	h, w := cfg.InputShape[1], cfg.InputShape[2]
	stem := cfg.Stem
	if stem == "" {
		stem = "imagenet"
		if h <= 64 && w <= 64 {
			stem = "cifar"
		}
	}
	switch stem {
	case "imagenet":
		if h < 32 || w < 32 {
			return "", fmt.Errorf("model %s: imagenet stem needs inputs ≥ 32×32, got %dx%d", cfg.Name, h, w)
		}
	case "cifar":
		if h < 8 || w < 8 {
			return "", fmt.Errorf("model %s: input %dx%d too small (want ≥ 8×8)", cfg.Name, h, w)
		}
	default:
		return "", fmt.Errorf("model %s: stem %q, want imagenet or cifar", cfg.Name, cfg.Stem)
	}
	return stem, nil
}

// Wide ResNet WRN-depth-k (Zagoruyko & Komodakis 2016) with pre-activation
// blocks, GroupNorm(16 groups) and weight standardisation, as in De et al.
// 2022: conv 3×3 (16) → 3 stages of (depth−4)/6 blocks of width 16k, 32k, 64k
// → GN → ReLU → global average pool → linear. Mirrored by estimateWRN
// (estimate.go).
func buildWRN(cfg ModelConfig, r *rand.Rand, depth, k int) ([]Layer, error) {
	c := cfg.InputShape[0]
	if err := checkWRN(cfg); err != nil {
		return nil, err
	}
	n := (depth - 4) / 6
	ws := true
	groups := 16
	ls := []Layer{NewConv2d("conv1", c, 16, 3, 1, 1, false, ws, r)}
	in := 16
	for stage := 0; stage < 3; stage++ {
		width := 16 * k << stage
		for bi := 0; bi < n; bi++ {
			stride := 1
			if stage > 0 && bi == 0 {
				stride = 2
			}
			name := fmt.Sprintf("block%d.%d", stage+1, bi)
			blk := &Residual{
				Pre: []Layer{NewGroupNorm(name+".gn1", min(groups, in), in, true), &ReLU{}},
				Main: []Layer{
					NewConv2d(name+".conv1", in, width, 3, stride, 1, false, ws, r),
					NewGroupNorm(name+".gn2", groups, width, true), &ReLU{},
					NewConv2d(name+".conv2", width, width, 3, 1, 1, false, ws, r),
				},
			}
			if in != width || stride != 1 {
				blk.Shortcut = []Layer{NewConv2d(name+".shortcut", in, width, 1, stride, 0, false, ws, r)}
				blk.ShortcutOnPre = true
			}
			ls = append(ls, blk)
			in = width
		}
	}
	ls = append(ls, NewGroupNorm("gn_final", groups, in, true), &ReLU{}, &GlobalAvgPool{},
		NewLinear("fc", in, cfg.NumClasses, true, r))
	return ls, nil
}

func checkWRN(cfg ModelConfig) error {
	h, w := cfg.InputShape[1], cfg.InputShape[2]
	if h < 8 || w < 8 {
		return fmt.Errorf("model %s: input %dx%d too small (want ≥ 8×8)", cfg.Name, h, w)
	}
	return nil
}

// The ScatterNet models of Tramèr & Boneh 2021 ("Differentially Private
// Learning Needs Better Features"): a fixed Scattering(J=2, L=8) front end
// (81 maps per input channel at 1/4 resolution), a GroupNorm without affine
// parameters (27 groups, per example, so no data statistics are needed) and
// a small trained head.
func init() {
	builders["scatternet-linear"] = buildScatterLinear
	builders["scatternet-cnn"] = buildScatterCNN
}

// scatterCacheBytes caps the memoised scattering maps of the ScatterNet
// models (float16; 31 KB per 32×32 RGB image, so CIFAR-10's 60,000 images
// take 1.9 GB).
const scatterCacheBytes = 3 << 30

// The scattering front end of the ScatterNet models: J = 2 scales, L = 8
// orientations.
const scatterJ, scatterL = 2, 8

// scatterFront returns the Scattering layer and its normalisation, and the
// shape of their output. Mirrored by estimateScatterFront (estimate.go).
func scatterFront(cfg ModelConfig) ([]Layer, [3]int, error) {
	if err := checkScatterFront(cfg); err != nil {
		return nil, [3]int{}, err
	}
	c, h, w := cfg.InputShape[0], cfg.InputShape[1], cfg.InputShape[2]
	s := NewScattering(c, h, w, scatterJ, scatterL)
	s.CacheBytes = scatterCacheBytes
	out := s.OutShape()
	if cfg.FeatureNorm == "data" {
		return []Layer{s, NewStandardize("scatter_norm", out[0])}, out, nil
	}
	return []Layer{s, NewGroupNorm("scatter_norm", 27, out[0], false)}, out, nil
}

// checkScatterFront rejects, before anything is allocated, the inputs the
// scattering transform cannot take and unknown feature normalisations.
func checkScatterFront(cfg ModelConfig) error {
	c, h, w := cfg.InputShape[0], cfg.InputShape[1], cfg.InputShape[2]
	if h%4 != 0 || w%4 != 0 {
		return fmt.Errorf("model %s: input %dx%d must be a multiple of 4 (the scattering transform with J=2 subsamples by 4; e.g. 32×32)", cfg.Name, h, w)
	}
	if err := checkScattering(c, h, w, scatterJ, scatterL); err != nil {
		return fmt.Errorf("model %s: %w", cfg.Name, err)
	}
	switch cfg.FeatureNorm {
	case "", "group", "data":
		return nil
	}
	return fmt.Errorf("model %s: feature_norm %q, want group or data", cfg.Name, cfg.FeatureNorm)
}

// scatternet-linear: Scattering → GroupNorm(27, 81·C) → flatten → linear
// (155,530 parameters for 3×32×32 inputs and 10 classes: 243·8·8·10 + 10).
// Mirrored by estimateScatterLinear (estimate.go).
func buildScatterLinear(cfg ModelConfig, r *rand.Rand) ([]Layer, error) {
	ls, out, err := scatterFront(cfg)
	if err != nil {
		return nil, err
	}
	return append(ls, &Flatten{}, NewLinear("fc", out[0]*out[1]*out[2], cfg.NumClasses, true, r)), nil
}

// scatternet-cnn: Scattering → GroupNorm(27, 81·C) → conv 243→64 k3 p1, tanh,
// maxpool 2, conv 64→64 k3 p1, tanh → flatten → linear (the CIFAR-10 CNN on
// ScatterNet features of Tramèr & Boneh's code; 187,210 parameters for
// 3×32×32 inputs and 10 classes: 140,032 + 36,928 + 10,250). Mirrored by
// estimateScatterCNN (estimate.go).
func buildScatterCNN(cfg ModelConfig, r *rand.Rand) ([]Layer, error) {
	ls, out, err := scatterFront(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkScatterCNN(cfg, out); err != nil {
		return nil, err
	}
	return append(ls,
		torchDefault(NewConv2d("conv1", out[0], 64, 3, 1, 1, true, cfg.WS, r), r), &Tanh{}, NewMaxPool(2, 2, 0),
		torchDefault(NewConv2d("conv2", 64, 64, 3, 1, 1, true, cfg.WS, r), r), &Tanh{},
		&Flatten{},
		NewLinear("fc", 64*(out[1]/2)*(out[2]/2), cfg.NumClasses, true, r)), nil
}

// checkScatterCNN checks that the scattering maps (shape out) survive
// scatternet-cnn's 2×2 max pool.
func checkScatterCNN(cfg ModelConfig, out [3]int) error {
	if out[1] < 2 || out[2] < 2 {
		return fmt.Errorf("model %s: input %dx%d too small (want ≥ 8×8)", cfg.Name, cfg.InputShape[1], cfg.InputShape[2])
	}
	return nil
}
