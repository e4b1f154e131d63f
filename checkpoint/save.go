package checkpoint

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// manifest is the JSON written as manifest.json.
type manifest struct {
	Magic         string              `json:"magic"`
	FormatVersion int                 `json:"format_version"`
	Step          int64               `json:"step"`
	Created       string              `json:"created"`
	Files         map[string]fileInfo `json:"files"`
	Meta          map[string]string   `json:"meta,omitempty"`
}

// Save writes ck as the directory dir/ckpt-<step, 10 digits> and returns its
// path. dir is created if needed.
//
// The write is atomic: every file goes into a temporary sibling directory
// (".tmp-ckpt-…"), each file is fsynced, manifest.json (format version, step,
// size and SHA-256 of every file) is written last, the directory is fsynced,
// renamed into place, and dir is fsynced. A crash at any point leaves either
// the previous set of checkpoints or the new one complete; never a corrupt
// visible checkpoint.
//
// Saving a step that already exists replaces it: the old directory is first
// renamed aside (".old-ckpt-…"), the new one renamed in, then the old one is
// removed. Should a crash fall between the two renames, List and LoadLatest
// still find the set-aside checkpoint and the next Save puts it back.
//
// Save first removes what crashed writes left behind (".tmp-ckpt-…",
// ".del-ckpt-…"). It assumes it is the only writer in dir (rank 0).
//
// Tensor groups become "<group>.safetensors" (F32, tensor names sorted; the
// metadata holds "format":"pt", the step and the group), blobs are written
// byte for byte under their names. ck is not modified. Misuse (see
// Checkpoint and UsageError) panics.
func Save(dir string, ck *Checkpoint) (path string, err error) {
	ck.validate("Save")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: creating checkpoint directory: %w", err)
	}
	if err := cleanStale(dir); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, fmt.Sprintf("%s%010d-", tmpPrefix, ck.Step))
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := writeContents(tmp, ck); err != nil {
		return "", fmt.Errorf("checkpoint: saving step %d: %w", ck.Step, err)
	}
	final := filepath.Join(dir, DirName(ck.Step))
	old := ""
	if ok, err := exists(final); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	} else if ok {
		if old, err = setAside(final, ".old-"); err != nil {
			return "", fmt.Errorf("checkpoint: replacing %s: %w", final, err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if old != "" {
			_ = os.Rename(old, final)
		}
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if err := SyncDir(dir); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return "", fmt.Errorf("checkpoint: removing replaced %s: %w", old, err)
		}
	}
	return final, nil
}

// writeContents writes every file of ck and then the manifest into dir.
func writeContents(dir string, ck *Checkpoint) error {
	m := manifest{
		Magic:         Magic,
		FormatVersion: FormatVersion,
		Step:          ck.Step,
		Files:         make(map[string]fileInfo, len(ck.Tensors)+len(ck.Blobs)),
		Meta:          ck.Meta,
	}
	created := ck.Created
	if created.IsZero() {
		created = time.Now()
	}
	m.Created = created.UTC().Format(time.RFC3339Nano)

	groups := sortedKeys(ck.Tensors)
	for _, g := range groups {
		name := g + TensorExt
		meta := map[string]string{"format": "pt", "dptrain.step": strconv.FormatInt(ck.Step, 10), "dptrain.group": g}
		ts := ck.Tensors[g]
		fi, err := writeFileSync(filepath.Join(dir, name), func(w io.Writer) error {
			_, err := EncodeSafetensors(w, ts, meta)
			return err
		})
		if err != nil {
			return err
		}
		m.Files[name] = fi
	}
	for _, b := range sortedKeys(ck.Blobs) {
		data := ck.Blobs[b]
		fi, err := writeFileSync(filepath.Join(dir, b), func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		})
		if err != nil {
			return err
		}
		m.Files[b] = fi
	}
	js, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if _, err := writeFileSync(filepath.Join(dir, ManifestName), func(w io.Writer) error {
		_, err := w.Write(js)
		return err
	}); err != nil {
		return err
	}
	return SyncDir(dir)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// cleanStale removes the leftovers of interrupted writes in dir, and puts
// back a checkpoint set aside by a replacement that crashed between its two
// renames.
func cleanStale(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		p := filepath.Join(dir, name)
		switch {
		case strings.HasPrefix(name, tmpPrefix), strings.HasPrefix(name, delPrefix):
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("checkpoint: removing stale %s: %w", p, err)
			}
		case strings.HasPrefix(name, oldPrefix):
			step, ok := parseOldName(name)
			if ok {
				final := filepath.Join(dir, DirName(step))
				there, err := exists(final)
				if err != nil {
					return fmt.Errorf("checkpoint: %w", err)
				}
				if !there {
					if err := os.Rename(p, final); err != nil {
						return fmt.Errorf("checkpoint: restoring %s: %w", p, err)
					}
					if err := SyncDir(dir); err != nil {
						return fmt.Errorf("checkpoint: %w", err)
					}
					continue
				}
			}
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("checkpoint: removing stale %s: %w", p, err)
			}
		}
	}
	return nil
}
