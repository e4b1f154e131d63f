package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"

	"dptrain/checkpoint"
	"dptrain/data"
	"dptrain/nn"
	"dptrain/optim"
	"dptrain/pretrained"
	"dptrain/tensor"
)

// inference is a model loaded from a checkpoint for evaluation or
// prediction, with what its input needs.
type inference struct {
	model   *nn.Model
	path    string
	step    int64
	weights string // raw, ema or imported
	classes []string
	// cfg holds the settings that shape the input: normalize (resolved),
	// image_size, freeze settings (for the EMA's parameter order).
	cfg Config
	// imageSize is the square side images are resized to for prediction.
	imageSize int
}

// loadInference loads a checkpoint made by training (state.json) or by
// `dptrain import` (pretrained.json), with the EMA weights when the
// checkpoint has them and useEMA.
func loadInference(path string, useEMA bool) (*inference, error) {
	ck, p, err := openCheckpoint(path)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	if info, ok, err := pretrained.ReadInfo(ck); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", p, err)
	} else if ok {
		m, _, err := pretrained.Load(ck)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", p, err)
		}
		return &inference{model: m, path: p, step: ck.Step, weights: "imported", classes: info.Classes,
			cfg: Config{Normalize: info.Normalize, ImageSize: info.ImageSize}, imageSize: info.ImageSize}, nil
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
	if len(cfg.Freeze) > 0 {
		if err := m.FreezePrefixes(cfg.Freeze); err != nil {
			return nil, err
		}
	}
	if cfg.TrainLastLayerOnly {
		if err := m.TrainLastLayerOnly(); err != nil {
			return nil, err
		}
	}
	inf := &inference{model: m, path: p, step: ck.Step, weights: "raw", classes: st.Classes, cfg: cfg,
		imageSize: st.Model.InputShape[1]}
	inf.cfg.Normalize = st.Normalize
	if ema, ok := ck.Tensors["ema"]; ok && useEMA {
		if err := loadEMA(m, ema, p); err != nil {
			return nil, err
		}
		inf.weights = "ema"
	}
	return inf, nil
}

// loadEMA copies the moving average of the trainable parameters into m.
func loadEMA(m *nn.Model, ema map[string]checkpoint.Tensor, path string) error {
	avg := groupState(ema)
	i := 0
	for _, prm := range m.Params() {
		if prm.Frozen {
			continue
		}
		t, ok := avg[optim.EMATensorName(i)]
		if !ok || len(t) != len(prm.Value) {
			return fmt.Errorf("checkpoint %s: EMA tensor %d (for %s) missing or of another size", path, i, prm.Name)
		}
		copy(prm.Value, t)
		i++
	}
	return nil
}

// PredictOptions says what Predict classifies.
type PredictOptions struct {
	// Checkpoint is a checkpoint folder, a run's --out folder or an
	// imported model's folder.
	Checkpoint string
	// Images are JPEG or PNG files.
	Images []string
	// TopK is the number of classes reported per image (default 5).
	TopK int
	// RawWeights uses the trained weights even when the checkpoint holds
	// their moving average.
	RawWeights bool
}

// ClassScore is one class of a prediction.
type ClassScore struct {
	Class int     `json:"class"`
	Name  string  `json:"name"`
	Prob  float64 `json:"prob"`
}

// Prediction is the top classes of one image.
type Prediction struct {
	Image string       `json:"image"`
	Top   []ClassScore `json:"top"`
}

// PredictResult is Predict's answer.
type PredictResult struct {
	Checkpoint  string       `json:"checkpoint"`
	Step        int64        `json:"step"`
	Weights     string       `json:"weights"`
	Predictions []Prediction `json:"predictions"`
}

// Predict classifies images with a checkpoint's model: each image is
// resized on its shorter side and centre-cropped to the model's input
// size, normalised as the checkpoint records, and scored; the TopK
// classes by softmax probability are returned with their names.
func Predict(o PredictOptions) (*PredictResult, error) {
	if len(o.Images) == 0 {
		return nil, errors.New("no images given")
	}
	k := o.TopK
	if k <= 0 {
		k = 5
	}
	inf, err := loadInference(o.Checkpoint, !o.RawWeights)
	if err != nil {
		return nil, err
	}
	in := inf.model.InputShape
	if in[0] != 3 && in[0] != 1 {
		return nil, fmt.Errorf("checkpoint %s: model input has %d channels: predict reads RGB or grey images", inf.path, in[0])
	}
	size := inf.imageSize
	if size <= 0 {
		size = in[1]
	}
	cfg := inf.cfg
	if cfg.Normalize == "" {
		cfg.Normalize = defaultNormalize(cfg.TrainData, in[0], size)
	}
	tr, err := transform(&Config{Normalize: cfg.Normalize}, in[0], size, size)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", inf.path, err)
	}
	res := &PredictResult{Checkpoint: inf.path, Step: inf.step, Weights: inf.weights}
	x := make([]float32, in[0]*size*size)
	for _, path := range o.Images {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		pix, h, w, err := data.DecodeImage(b, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pix = data.ResizeImage(pix, 3, h, w, data.ResizeShorterCenter, size)
		if in[0] == 1 { // grey: the mean of the three channels
			grey := make([]uint8, size*size)
			for i := range grey {
				grey[i] = uint8((int(pix[i]) + int(pix[size*size+i]) + int(pix[2*size*size+i]) + 1) / 3)
			}
			pix = grey
		}
		if err := tr.Apply(x, pix, in[0], size, size, data.Key{}, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		logits := inf.model.Forward(tensor.FromData(x, 1, in[0], size, size), false).Data
		res.Predictions = append(res.Predictions, Prediction{Image: path, Top: topK(logits, inf.classes, k)})
	}
	return res, nil
}

// topK returns the k classes of highest softmax probability.
func topK(logits []float32, names []string, k int) []ClassScore {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	var z float64
	for _, v := range logits {
		z += math.Exp(float64(v) - mx)
	}
	out := make([]ClassScore, len(logits))
	for i, v := range logits {
		name := fmt.Sprint(i)
		if i < len(names) {
			name = names[i]
		}
		out[i] = ClassScore{Class: i, Name: name, Prob: math.Exp(float64(v)-mx) / z}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Prob > out[b].Prob })
	return out[:min(k, len(out))]
}
