package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func corrupt(path string, kind error, format string, args ...any) error {
	return fmt.Errorf("checkpoint: %s: %w: %s", path, kind, fmt.Sprintf(format, args...))
}

// Load reads and verifies the checkpoint directory at path: the manifest's
// magic and format version, that the step matches the directory name, and
// the size and SHA-256 of every listed file; then it decodes every tensor
// group. Errors wrap one of ErrIncomplete, ErrBadManifest,
// ErrUnsupportedVersion, ErrMissingFile, ErrChecksum, ErrSafetensors and name
// the file and what was expected.
func Load(path string) (*Checkpoint, error) {
	m, err := readManifest(path)
	if err != nil {
		return nil, err
	}
	ck := &Checkpoint{Step: m.Step, Meta: m.Meta}
	if ck.Created, err = time.Parse(time.RFC3339Nano, m.Created); err != nil {
		return nil, corrupt(filepath.Join(path, ManifestName), ErrBadManifest, "field \"created\": %q is not an RFC 3339 time", m.Created)
	}
	for _, name := range sortedKeys(m.Files) {
		fp := filepath.Join(path, name)
		data, err := readChecked(fp, m.Files[name])
		if err != nil {
			return nil, err
		}
		if group, ok := strings.CutSuffix(name, TensorExt); ok {
			raws, _, err := DecodeSafetensorsRaw(data)
			if err != nil {
				return nil, withPath(fp, err)
			}
			ts := make(map[string]Tensor, len(raws))
			for tn, r := range raws {
				if r.DType != F32 {
					return nil, withPath(fp, stErr(tn, "dtype %s in a checkpoint (want F32)", r.DType))
				}
				t := Tensor{Shape: r.Shape, Data: make([]float32, len(r.Data)/4)}
				toFloat32(t.Data, F32, r.Data)
				ts[tn] = t
			}
			if ck.Tensors == nil {
				ck.Tensors = make(map[string]map[string]Tensor)
			}
			ck.Tensors[group] = ts
		} else {
			if ck.Blobs == nil {
				ck.Blobs = make(map[string][]byte)
			}
			ck.Blobs[name] = data
		}
	}
	return ck, nil
}

// readManifest reads and checks path/manifest.json.
func readManifest(path string) (*manifest, error) {
	mp := filepath.Join(path, ManifestName)
	b, err := os.ReadFile(mp)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(path); serr != nil {
			return nil, fmt.Errorf("checkpoint: %w", serr)
		}
		return nil, corrupt(path, ErrIncomplete, "no %s (an interrupted or foreign write)", ManifestName)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	// Decode into pointers to tell a missing field from a zero one.
	var raw struct {
		Magic         *string              `json:"magic"`
		FormatVersion *int                 `json:"format_version"`
		Step          *int64               `json:"step"`
		Created       *string              `json:"created"`
		Files         map[string]*fileInfo `json:"files"`
		Meta          map[string]string    `json:"meta"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&raw); err != nil {
		return nil, corrupt(mp, ErrBadManifest, "not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, corrupt(mp, ErrBadManifest, "trailing data after the JSON object")
	}
	switch {
	case raw.Magic == nil:
		return nil, corrupt(mp, ErrBadManifest, "missing field \"magic\" (want %q)", Magic)
	case *raw.Magic != Magic:
		return nil, corrupt(mp, ErrBadManifest, "field \"magic\" is %q (want %q)", *raw.Magic, Magic)
	case raw.FormatVersion == nil:
		return nil, corrupt(mp, ErrBadManifest, "missing field \"format_version\"")
	case *raw.FormatVersion > FormatVersion:
		return nil, corrupt(mp, ErrUnsupportedVersion, "format_version %d was written by a newer dptrain (this one reads version %d)", *raw.FormatVersion, FormatVersion)
	case *raw.FormatVersion < 1:
		return nil, corrupt(mp, ErrUnsupportedVersion, "format_version %d (want %d)", *raw.FormatVersion, FormatVersion)
	case raw.Step == nil:
		return nil, corrupt(mp, ErrBadManifest, "missing field \"step\"")
	case *raw.Step < 0:
		return nil, corrupt(mp, ErrBadManifest, "field \"step\" is %d (want ≥ 0)", *raw.Step)
	case raw.Created == nil:
		return nil, corrupt(mp, ErrBadManifest, "missing field \"created\"")
	case raw.Files == nil:
		return nil, corrupt(mp, ErrBadManifest, "missing field \"files\"")
	}
	base := filepath.Base(path)
	step, ok := parseDirName(base)
	if !ok {
		step, ok = parseOldName(base)
	}
	if ok && step != *raw.Step {
		return nil, corrupt(mp, ErrBadManifest, "field \"step\" is %d but the directory is named for step %d", *raw.Step, step)
	}
	m := &manifest{Magic: *raw.Magic, FormatVersion: *raw.FormatVersion, Step: *raw.Step,
		Created: *raw.Created, Files: make(map[string]fileInfo, len(raw.Files)), Meta: raw.Meta}
	for name, fi := range raw.Files {
		group, isTensor := strings.CutSuffix(name, TensorExt)
		if isTensor && !isGroupName(group) || !isTensor && !isBlobName(name) {
			return nil, corrupt(mp, ErrBadManifest, "file name %q is not a valid checkpoint file name", name)
		}
		if fi == nil || len(fi.SHA256) != 2*sha256.Size || fi.Size < 0 {
			return nil, corrupt(mp, ErrBadManifest, "file %q: want {\"sha256\": 64 hex digits, \"size\": bytes ≥ 0}", name)
		}
		if _, err := hex.DecodeString(fi.SHA256); err != nil {
			return nil, corrupt(mp, ErrBadManifest, "file %q: sha256 %q is not hex", name, fi.SHA256)
		}
		m.Files[name] = *fi
	}
	return m, nil
}

// Verify does all of Load's checks (contents included) and keeps nothing.
func Verify(path string) error {
	_, err := Load(path)
	return err
}

// readChecked returns the contents of the file at fp after checking its size
// and SHA-256.
func readChecked(fp string, want fileInfo) ([]byte, error) {
	f, err := os.Open(fp)
	if errors.Is(err, os.ErrNotExist) {
		return nil, corrupt(fp, ErrMissingFile, "listed in the manifest but absent")
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if st.Size() != want.Size {
		return nil, corrupt(fp, ErrChecksum, "size %d bytes (manifest says %d)", st.Size(), want.Size)
	}
	data := make([]byte, want.Size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("checkpoint: reading %s: %w", fp, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, want.SHA256) {
		return nil, corrupt(fp, ErrChecksum, "SHA-256 %s (manifest says %s)", got, want.SHA256)
	}
	return data, nil
}
