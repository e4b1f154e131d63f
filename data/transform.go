package data

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Crop selects how a Transform takes its output window from the input.
type Crop int

const (
	// CropNone uses the whole input; the output size must equal it.
	CropNone Crop = iota
	// CropRandom pads the input by Pad pixels on each side and takes a
	// uniformly random Height×Width window (the CIFAR augmentation).
	CropRandom
	// CropRandomResized takes a random window of area fraction in Scale and
	// aspect ratio in Ratio (log-uniform) and resizes it to Height×Width (the
	// Inception / ImageNet augmentation).
	CropRandomResized
	// CropCenter takes the centre Height×Width window (no resizing).
	CropCenter
	// CropCenterResized takes the centre square of side CenterFraction×the
	// shorter side and resizes it to Height×Width (ImageNet evaluation).
	CropCenterResized
)

// cropNames are the names of the crops, indexed by Crop: the values of
// the config's crop key.
var cropNames = [...]string{
	CropNone:          "none",
	CropRandom:        "random",
	CropRandomResized: "random-resized",
	CropCenter:        "center",
	CropCenterResized: "center-resized",
}

// Crops lists the crop names ParseCrop accepts, in Crop order.
func Crops() []string { return append([]string(nil), cropNames[:]...) }

// ParseCrop returns the crop named s (one of Crops; "" is CropNone), or an
// error listing the names.
func ParseCrop(s string) (Crop, error) {
	if s == "" {
		return CropNone, nil
	}
	for c, name := range cropNames {
		if s == name {
			return Crop(c), nil
		}
	}
	return 0, fmt.Errorf("want one of %s; got %q", strings.Join(cropNames[:], ", "), s)
}

// String returns the crop's name, as ParseCrop accepts it.
func (c Crop) String() string {
	if c >= 0 && int(c) < len(cropNames) {
		return cropNames[c]
	}
	return fmt.Sprintf("Crop(%d)", int(c))
}

// Transform turns a uint8 CHW image into float32 CHW: a crop (see Crop), an
// optional horizontal flip with probability 1/2, then scaling to [0,1] and
// per-channel normalisation (v/255 − Mean[c]) / Std[c]. Its randomness is a
// function of (key, step, example index, augmentation number) only: each
// such tuple has its own ChaCha8 generator, seeded by a PRF of the Key.
type Transform struct {
	Height, Width int  // output size; 0 means the input size
	Crop          Crop // default CropNone
	Pad           int  // CropRandom: padding on each side
	PadReflect    bool // CropRandom: reflect at borders instead of zero padding
	Flip          bool // random horizontal flip
	// CropRandomResized: area fraction range (default 0.08–1) and aspect
	// ratio range (default 3/4–4/3).
	Scale, Ratio [2]float64
	// CropCenterResized: fraction of the shorter side kept (default 0.875).
	CenterFraction float64
	// Per-channel mean and standard deviation on the [0,1] scale; nil for
	// none. See the normalisation constants (CIFAR10Mean, …).
	Mean, Std []float32
}

// Eval returns the deterministic version of t for evaluation: random crops
// become centre crops (random-resized becomes centre-resized), no flip.
func (t Transform) Eval() Transform {
	e := t
	e.Flip = false
	switch t.Crop {
	case CropRandom:
		e.Crop = CropCenter
		e.Pad = 0
	case CropRandomResized:
		e.Crop = CropCenterResized
	}
	return e
}

// OutShape returns the output shape for c×h×w input.
func (t Transform) OutShape(c, h, w int) (int, int, int) {
	oh, ow := t.Height, t.Width
	if oh == 0 {
		oh = h
	}
	if ow == 0 {
		ow = w
	}
	return c, oh, ow
}

// Validate checks t against an input shape; errors name the field.
func (t Transform) Validate(c, h, w int) error {
	_, oh, ow := t.OutShape(c, h, w)
	if t.Height < 0 || t.Width < 0 || t.Pad < 0 {
		return fmt.Errorf("transform: negative size or padding (%d×%d, pad %d)", t.Height, t.Width, t.Pad)
	}
	if t.Mean != nil && len(t.Mean) != c || t.Std != nil && len(t.Std) != c {
		return fmt.Errorf("transform: mean/std have %d/%d values: expected %d (one per channel)", len(t.Mean), len(t.Std), c)
	}
	for i, s := range t.Std {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("transform: std[%d] = %v: expected > 0", i, s)
		}
	}
	switch t.Crop {
	case CropNone:
		if oh != h || ow != w {
			return fmt.Errorf("transform: output %d×%d with no crop: expected the input size %d×%d", oh, ow, h, w)
		}
	case CropRandom:
		if oh > h+2*t.Pad || ow > w+2*t.Pad {
			return fmt.Errorf("transform: random crop %d×%d larger than the padded input %d×%d", oh, ow, h+2*t.Pad, w+2*t.Pad)
		}
		if t.PadReflect && (t.Pad >= h || t.Pad >= w) {
			return fmt.Errorf("transform: reflect padding %d: expected less than the input size %d×%d", t.Pad, h, w)
		}
	case CropCenter:
		if oh > h || ow > w {
			return fmt.Errorf("transform: centre crop %d×%d larger than the input %d×%d", oh, ow, h, w)
		}
	case CropRandomResized:
		s, r := t.scale(), t.ratio()
		if !(s[0] > 0 && s[0] <= s[1] && s[1] <= 1) {
			return fmt.Errorf("transform: scale %v: expected 0 < min <= max <= 1", s)
		}
		if !(r[0] > 0 && r[0] <= r[1]) || math.IsInf(r[1], 0) {
			return fmt.Errorf("transform: ratio %v: expected 0 < min <= max", r)
		}
	case CropCenterResized:
		if f := t.centerFraction(); !(f > 0 && f <= 1) {
			return fmt.Errorf("transform: centre fraction %v: expected in (0,1]", f)
		}
	default:
		return fmt.Errorf("transform: unknown crop %d", t.Crop)
	}
	return nil
}

func (t Transform) scale() [2]float64 {
	if t.Scale == [2]float64{} {
		return [2]float64{0.08, 1}
	}
	return t.Scale
}

func (t Transform) ratio() [2]float64 {
	if t.Ratio == [2]float64{} {
		return [2]float64{3.0 / 4, 4.0 / 3}
	}
	return t.Ratio
}

func (t Transform) centerFraction() float64 {
	if t.CenterFraction == 0 {
		return 0.875
	}
	return t.CenterFraction
}

// augmenter applies a validated Transform to images of one input shape,
// reusing its buffers. One per goroutine.
type augmenter struct {
	t          Transform
	key        Key
	c, h, w    int
	oh, ow     int
	scale, off []float32 // per channel: out = v*scale + off
	lut        [][256]float32
	img        []uint8
	random     bool         // t draws random numbers (random crop or flip)
	src        rand.ChaCha8 // reseeded in place for each (step, index, k)
	rng        *rand.Rand   // draws from src
	rs         resampler
	xmap       []int // CropRandom: source column per output column, -1 = pad
}

func newAugmenter(t Transform, key Key, c, h, w int) *augmenter {
	a := &augmenter{t: t, key: key, c: c, h: h, w: w, img: make([]uint8, c*h*w)}
	_, a.oh, a.ow = t.OutShape(c, h, w)
	a.scale, a.off = make([]float32, c), make([]float32, c)
	a.lut = make([][256]float32, c)
	for ch := range c {
		mean, std := float32(0), float32(1)
		if t.Mean != nil {
			mean, std = t.Mean[ch], t.Std[ch]
		}
		a.scale[ch] = 1 / (255 * std)
		a.off[ch] = -mean / std
		for v := range 256 {
			a.lut[ch][v] = (float32(v)/255 - mean) / std
		}
	}
	a.random = t.Flip || t.Crop == CropRandom || t.Crop == CropRandomResized
	a.rng = rand.New(&a.src)
	a.xmap = make([]int, a.ow)
	return a
}

// seedFor reseeds the generator for one (step, example, augmentation), as
// newStream(key, streamAugment, step, index, k) would seed a new one.
func (a *augmenter) seedFor(step int64, index, k int) {
	seedStream(&a.src, &a.key, streamAugment, step, index, k)
}

// apply transforms src (c×h×w) into dst (c×oh×ow), drawing randomness for
// (step, index, k).
func (a *augmenter) apply(dst []float32, src []uint8, step int64, index, k int) {
	t := &a.t
	if a.random { // deterministic transforms (evaluation) skip the PRF
		a.seedFor(step, index, k)
	}
	c, h, w, oh, ow := a.c, a.h, a.w, a.oh, a.ow
	var oy, ox int // window origin in (padded) input coordinates
	switch t.Crop {
	case CropRandom:
		oy = a.rng.IntN(h+2*t.Pad-oh+1) - t.Pad
		ox = a.rng.IntN(w+2*t.Pad-ow+1) - t.Pad
	case CropCenter:
		oy, ox = (h-oh)/2, (w-ow)/2
	case CropRandomResized, CropCenterResized:
		x0, y0, rw, rh := a.resizedWindow()
		flip := t.Flip && a.rng.IntN(2) == 1
		a.rs.region(src, c, h, w, x0, y0, rw, rh, oh, ow, func(ch, y int, row []float32) {
			d := dst[(ch*oh+y)*ow : (ch*oh+y+1)*ow]
			s, o := a.scale[ch], a.off[ch]
			if flip {
				for x, v := range row {
					d[ow-1-x] = v*s + o
				}
				return
			}
			for x, v := range row {
				d[x] = v*s + o
			}
		})
		return
	}
	flip := t.Flip && a.rng.IntN(2) == 1
	// Column map (with padding/reflection and flip folded in).
	for x := range ow {
		sx := ox + x
		if flip {
			sx = ox + ow - 1 - x
		}
		a.xmap[x] = a.reflect(sx, w)
	}
	inside := !flip && ox >= 0 && ox+ow <= w
	for ch := range c {
		lut := &a.lut[ch]
		plane := src[ch*h*w : (ch+1)*h*w]
		for y := range oh {
			d := dst[(ch*oh+y)*ow : (ch*oh+y+1)*ow]
			sy := a.reflect(oy+y, h)
			if sy < 0 {
				for x := range d {
					d[x] = lut[0]
				}
				continue
			}
			row := plane[sy*w : (sy+1)*w]
			if inside {
				for x, v := range row[ox : ox+ow] {
					d[x] = lut[v]
				}
				continue
			}
			for x, sx := range a.xmap {
				if sx < 0 {
					d[x] = lut[0]
				} else {
					d[x] = lut[row[sx]]
				}
			}
		}
	}
}

// reflect maps a (padded) coordinate to the input: itself if inside, its
// mirror image with PadReflect, or -1 (zero padding).
func (a *augmenter) reflect(i, n int) int {
	if i >= 0 && i < n {
		return i
	}
	if !a.t.PadReflect {
		return -1
	}
	if i < 0 {
		return -i
	}
	return 2*(n-1) - i
}

// resizedWindow picks the source window for the resized crops, as
// torchvision's RandomResizedCrop (10 tries, then a centre crop with the
// ratio clamped) and the centre-fraction crop.
func (a *augmenter) resizedWindow() (x0, y0, rw, rh float64) {
	h, w := float64(a.h), float64(a.w)
	if a.t.Crop == CropCenterResized {
		side := a.t.centerFraction() * min(h, w)
		return (w - side) / 2, (h - side) / 2, side, side
	}
	s, r := a.t.scale(), a.t.ratio()
	area := h * w
	lr0, lr1 := math.Log(r[0]), math.Log(r[1])
	for range 10 {
		target := area * (s[0] + a.rng.Float64()*(s[1]-s[0]))
		ar := math.Exp(lr0 + a.rng.Float64()*(lr1-lr0))
		cw := math.Round(math.Sqrt(target * ar))
		ch := math.Round(math.Sqrt(target / ar))
		if cw > 0 && ch > 0 && cw <= w && ch <= h {
			y := float64(a.rng.IntN(int(h-ch) + 1))
			x := float64(a.rng.IntN(int(w-cw) + 1))
			return x, y, cw, ch
		}
	}
	ar := w / h
	cw, ch := w, h
	if ar < r[0] {
		ch = math.Round(w / r[0])
	} else if ar > r[1] {
		cw = math.Round(h * r[1])
	}
	return (w - cw) / 2, (h - ch) / 2, cw, ch
}

// Apply transforms one c×h×w image into dst (len ≥ c·oh·ow, see OutShape)
// with the randomness of (key, step, index, k): the same arguments always
// give the same result. It allocates; Loader reuses state across calls. It
// panics with a UsageError if k is outside [0, 2³²).
func (t Transform) Apply(dst []float32, src []uint8, c, h, w int, key Key, step int64, index, k int) error {
	if err := t.Validate(c, h, w); err != nil {
		return err
	}
	_, oh, ow := t.OutShape(c, h, w)
	if len(src) < c*h*w || len(dst) < c*oh*ow {
		panic(usagef("Transform.Apply: src has %d bytes (need %d), dst %d values (need %d)", len(src), c*h*w, len(dst), c*oh*ow))
	}
	if k < 0 || uint64(k) > math.MaxUint32 {
		panic(usagef("Transform.Apply: augmentation number %d: expected in [0, 2^32)", k))
	}
	newAugmenter(t, key, c, h, w).apply(dst, src, step, index, k)
	return nil
}

// Normalisation constants (per channel, on the [0,1] scale). CIFAR-10's are
// the training set's per-channel pixel mean and standard deviation.
var (
	MNISTMean    = []float32{0.1307}
	MNISTStd     = []float32{0.3081}
	CIFAR10Mean  = []float32{0.4914, 0.4822, 0.4465}
	CIFAR10Std   = []float32{0.2470, 0.2435, 0.2616}
	CIFAR100Mean = []float32{0.5071, 0.4865, 0.4409}
	CIFAR100Std  = []float32{0.2673, 0.2564, 0.2762}
	ImageNetMean = []float32{0.485, 0.456, 0.406}
	ImageNetStd  = []float32{0.229, 0.224, 0.225}
	// Keras's "caffe" preprocessing of ImageNet models (255·x minus the
	// ImageNet mean, no scaling), per RGB channel: mean 123.68, 116.779,
	// 103.939 out of 255, standard deviation 1/255.
	CaffeMean = []float32{123.68 / 255, 116.779 / 255, 103.939 / 255}
	CaffeStd  = []float32{1.0 / 255, 1.0 / 255, 1.0 / 255}
)
