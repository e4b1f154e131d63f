package kerasref

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Scales of the synthetic weights (see WriteSynthetic). The residual gamma range
// was tuned so activations keep their scale through ResNet-50's blocks.
const (
	synthConvGain      = 2.0  // conv kernel variance gain/fan_in (He, for relu)
	synthDenseGain     = 1.0  // dense kernel variance gain/fan_in
	synthBiasStd       = 0.05 // conv/dense bias
	synthBetaStd       = 0.1
	synthMeanStd       = 0.1
	synthGammaLo       = 0.5
	synthGammaHi       = 1.5
	synthResGammaLo    = 0.3 // gamma of a BatchNormalization feeding an Add
	synthResGammaHi    = 0.7
	synthVarLo         = 0.5
	synthVarHi         = 2.0
	synthOtherStd      = 0.1              // any other weight
	synthInputConvStd  = 1.0 / 8          // extra std factor of a conv reading the model input
	synthSeedStreamKey = 0x6b657261737265 // "kerasre": second PCG word
)

// WriteSynthetic writes dir/model.json, a copy of modelJSON whose
// weightsManifest is rewritten to a single group of shards files named
// group1-shard<i>of<shards>.bin (the same weights, names, shapes, dtypes
// and order), and those shard files, holding deterministic random float32
// weights drawn from a PCG seeded by seed:
//
//   - conv kernels [kh, kw, in, out]: N(0, 2/(kh·kw·in)) (He, for relu),
//     with the std divided by 8 for a conv reading the model input (through
//     ZeroPadding2D only); dense kernels [in, out]: N(0, 1/in);
//   - biases N(0, 0.05²);
//   - BatchNormalization gamma U(0.5, 1.5), or U(0.2, 0.5) for a layer
//     whose output feeds an Add (the last of a residual branch, and a
//     projection shortcut), so residual sums stay in range; beta and
//     moving_mean N(0, 0.1²); moving_variance U(0.5, 2);
//   - anything else N(0, 0.1²).
//
// Weights are drawn in manifest order, so the values depend only on seed
// and the manifest, not on shards. The byte stream is split into shards
// near-equal files (cut at multiples of 4 bytes, so a weight may span two).
// dir must exist.
//
// On the ResNet-50 topology the activations then keep their scale through
// all 16 residual blocks, and at 64×64 the logits have a std across classes
// of about 10 for caffe-preprocessed (CaffePreprocess) 0..255 images and
// about 0.5 for N(0, 1) inputs.
func WriteSynthetic(dir string, modelJSON []byte, seed uint64, shards int) error {
	if shards < 1 {
		return fmt.Errorf("kerasref: WriteSynthetic: shards %d < 1", shards)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(modelJSON, &top); err != nil {
		return fmt.Errorf("kerasref: WriteSynthetic: model.json: %w", err)
	}
	var groups []manifestGroup
	if raw, ok := top["weightsManifest"]; ok {
		if err := json.Unmarshal(raw, &groups); err != nil {
			return fmt.Errorf("kerasref: WriteSynthetic: weightsManifest: %w", err)
		}
	}
	topo, err := parseTopology(top["modelTopology"])
	if err != nil {
		return fmt.Errorf("kerasref: WriteSynthetic: %w", err)
	}
	residual := map[string]bool{} // BatchNormalization layers feeding an Add
	for _, n := range topo.layers {
		if n.class != "Add" {
			continue
		}
		for _, in := range n.inputs {
			if p := topo.byName[in]; p != nil && p.class == "BatchNormalization" {
				residual[p.name] = true
			}
		}
	}

	// Conv2D layers reading the model input (through padding only).
	inputConv := map[string]bool{}
	for _, n := range topo.layers {
		if n.class != "Conv2D" {
			continue
		}
		p := n
		for len(p.inputs) == 1 {
			q := topo.byName[p.inputs[0]]
			if q == nil || (q.class != "ZeroPadding2D" && q.class != "InputLayer") {
				break
			}
			p = q
		}
		if p.class == "InputLayer" {
			inputConv[n.name] = true
		}
	}

	var all []manifestWeight
	for _, g := range groups {
		all = append(all, g.Weights...)
	}
	total := 0
	for _, w := range all {
		n := 1
		for _, d := range w.Shape {
			n *= max(d, 0)
		}
		total += 4 * n
	}
	rng := rand.New(rand.NewPCG(seed, seed^synthSeedStreamKey))
	stream := make([]byte, 0, total)
	for _, w := range all {
		if w.Dtype != "float32" {
			return fmt.Errorf("kerasref: WriteSynthetic: weight %q: dtype %q unsupported (only float32)", w.Name, w.Dtype)
		}
		n := 1
		for _, d := range w.Shape {
			if d < 0 {
				return fmt.Errorf("kerasref: WriteSynthetic: weight %q: bad shape %v", w.Name, w.Shape)
			}
			n *= d
		}
		draw := synthDistribution(w, residual, inputConv)
		for range n {
			stream = binary.LittleEndian.AppendUint32(stream, math.Float32bits(float32(draw(rng))))
		}
	}

	per := (len(stream)/4 + shards - 1) / shards * 4
	paths := make([]string, shards)
	for i := range shards {
		paths[i] = fmt.Sprintf("group1-shard%dof%d.bin", i+1, shards)
		lo, hi := min(i*per, len(stream)), min((i+1)*per, len(stream))
		if err := os.WriteFile(filepath.Join(dir, paths[i]), stream[lo:hi], 0o644); err != nil {
			return fmt.Errorf("kerasref: WriteSynthetic: %w", err)
		}
	}
	if all == nil {
		all = []manifestWeight{}
	}
	man, err := json.Marshal([]manifestGroup{{Paths: paths, Weights: all}})
	if err != nil {
		return fmt.Errorf("kerasref: WriteSynthetic: %w", err)
	}
	top["weightsManifest"] = man
	out, err := json.Marshal(top)
	if err != nil {
		return fmt.Errorf("kerasref: WriteSynthetic: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), out, 0o644); err != nil {
		return fmt.Errorf("kerasref: WriteSynthetic: %w", err)
	}
	return nil
}

// synthDistribution picks the distribution of one manifest weight from
// its name ("<layer>/<kind>") and shape.
func synthDistribution(w manifestWeight, residual, inputConv map[string]bool) func(*rand.Rand) float64 {
	parts := strings.Split(strings.TrimSuffix(w.Name, ":0"), "/")
	kind, layer := parts[len(parts)-1], ""
	if len(parts) >= 2 {
		layer = parts[len(parts)-2]
	}
	normal := func(std float64) func(*rand.Rand) float64 {
		return func(r *rand.Rand) float64 { return std * r.NormFloat64() }
	}
	uniform := func(lo, hi float64) func(*rand.Rand) float64 {
		return func(r *rand.Rand) float64 { return lo + (hi-lo)*r.Float64() }
	}
	switch kind {
	case "kernel":
		fanIn, gain := 1, synthDenseGain
		for _, d := range w.Shape[:max(len(w.Shape)-1, 0)] {
			fanIn *= d
		}
		std := math.Sqrt(gain / float64(max(fanIn, 1)))
		if len(w.Shape) == 4 {
			std = math.Sqrt(synthConvGain / float64(max(fanIn, 1)))
			if inputConv[layer] {
				std *= synthInputConvStd
			}
		}
		return normal(std)
	case "bias":
		return normal(synthBiasStd)
	case "gamma":
		if residual[layer] {
			return uniform(synthResGammaLo, synthResGammaHi)
		}
		return uniform(synthGammaLo, synthGammaHi)
	case "beta":
		return normal(synthBetaStd)
	case "moving_mean":
		return normal(synthMeanStd)
	case "moving_variance":
		return uniform(synthVarLo, synthVarHi)
	}
	return normal(synthOtherStd)
}
