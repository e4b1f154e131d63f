package pretrained

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"dptrain/checkpoint"
	"dptrain/nn"
)

// InfoBlob is the checkpoint blob that marks an imported model and
// describes it.
const InfoBlob = "pretrained.json"

// infoVersion is the format version of InfoBlob.
const infoVersion = 1

// Info describes an imported model: what it is, what it predicts and the
// preprocessing its weights expect.
type Info struct {
	FormatVersion int            `json:"format_version"`
	Model         nn.ModelConfig `json:"model"`
	// Classes names the model's outputs, in order.
	Classes []string `json:"classes"`
	// Normalize is the training configuration's normalize preset the
	// weights expect (imagenet for torchvision, caffe for Keras).
	Normalize string `json:"normalize"`
	// ImageSize is the side of the square input the weights were trained
	// at (224); images are resized on their shorter side and centre-cropped
	// to it for prediction.
	ImageSize int `json:"image_size"`
	// Source says where the weights came from (tfjs:DIR or
	// torchvision:FILE), with Digest the SHA-256 of its files.
	Source string `json:"source"`
	Digest string `json:"digest,omitempty"`
}

// Imported is a model read from a public format.
type Imported struct {
	Model     *nn.Model
	Config    nn.ModelConfig
	Classes   []string
	Normalize string
	ImageSize int
	Source    string
	Digest    string
}

// Info returns the description Save records.
func (im *Imported) Info() Info {
	return Info{FormatVersion: infoVersion, Model: im.Config, Classes: im.Classes, Normalize: im.Normalize,
		ImageSize: im.ImageSize, Source: im.Source, Digest: im.Digest}
}

// Save writes the model as a dptrain checkpoint (step 0) in the folder dir
// (created; a folder of checkpoints, as a run's checkpoints/ is) and
// returns the checkpoint's path. The weights group holds every parameter
// and buffer under dptrain's names; the InfoBlob blob describes it.
func (im *Imported) Save(dir string) (string, error) {
	if len(im.Classes) != im.Config.NumClasses {
		return "", fmt.Errorf("import: %d class names for %d outputs", len(im.Classes), im.Config.NumClasses)
	}
	weights := map[string]checkpoint.Tensor{}
	for _, p := range im.Model.Params() {
		weights[p.Name] = checkpoint.Tensor{Shape: p.Shape, Data: p.Value}
	}
	b, err := json.MarshalIndent(im.Info(), "", "  ")
	if err != nil {
		return "", err
	}
	ck := &checkpoint.Checkpoint{Step: 0, Tensors: map[string]map[string]checkpoint.Tensor{"weights": weights},
		Blobs: map[string][]byte{InfoBlob: b},
		Meta:  map[string]string{"model": im.Config.Name, "pretrained": im.Source}}
	return checkpoint.Save(dir, ck)
}

// ReadInfo returns the InfoBlob of a checkpoint, and false when it has none
// (a training run's checkpoint).
func ReadInfo(ck *checkpoint.Checkpoint) (Info, bool, error) {
	b, ok := ck.Blobs[InfoBlob]
	if !ok {
		return Info{}, false, nil
	}
	var in Info
	if err := json.Unmarshal(b, &in); err != nil {
		return in, true, fmt.Errorf("%s: %w", InfoBlob, err)
	}
	if in.FormatVersion != infoVersion {
		return in, true, fmt.Errorf("%s: format version %d, this dptrain reads %d", InfoBlob, in.FormatVersion, infoVersion)
	}
	if len(in.Classes) != in.Model.NumClasses {
		return in, true, fmt.Errorf("%s: %d class names for %d classes", InfoBlob, len(in.Classes), in.Model.NumClasses)
	}
	return in, true, nil
}

// Load builds the model a checkpoint with an InfoBlob describes and loads
// its weights (all of them, each with its shape).
func Load(ck *checkpoint.Checkpoint) (*nn.Model, Info, error) {
	in, ok, err := ReadInfo(ck)
	if err != nil {
		return nil, in, err
	}
	if !ok {
		return nil, in, fmt.Errorf("not an imported model (no %s)", InfoBlob)
	}
	m, err := nn.NewModel(in.Model)
	if err != nil {
		return nil, in, err
	}
	ts := ck.Tensors["weights"]
	for _, p := range m.Params() {
		t, ok := ts[p.Name]
		if !ok || len(t.Data) != len(p.Value) {
			return nil, in, fmt.Errorf("weights: %s %v missing or of another shape", p.Name, p.Shape)
		}
		copy(p.Value, t.Data)
	}
	return m, in, nil
}

// numberedClasses names n classes "0", "1", … (when the source has no names).
func numberedClasses(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(i)
	}
	return out
}

// findLabels returns the first of the candidate files that exists.
func findLabels(cands ...string) string {
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return c
		}
	}
	return ""
}

// digestFiles returns "sha256:" and the SHA-256 of the files' contents in
// order, each preceded by its length.
func digestFiles(paths ...string) (string, error) {
	h := sha256.New()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return "", err
		}
		st, err := f.Stat()
		if err == nil {
			fmt.Fprintf(h, "%d\n", st.Size())
			_, err = io.Copy(h, f)
		}
		f.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// SetLabels names the classes from a labels file (see ReadLabels).
func (im *Imported) SetLabels(path string) error {
	names, err := ReadLabels(path, im.Config.NumClasses)
	if err != nil {
		return err
	}
	im.Classes = names
	return nil
}
