package checkpoint

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// fileInfo is a manifest record: size in bytes and SHA-256 (hex).
type fileInfo struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeFileSync creates path (which must not exist), fills it, fsyncs and
// closes it, and returns its size and SHA-256, hashed while writing.
func writeFileSync(path string, fill func(io.Writer) error) (fileInfo, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fileInfo{}, err
	}
	return writeSync(f, fill)
}

// writeSync fills f, fsyncs and closes it.
func writeSync(f *os.File, fill func(io.Writer) error) (fi fileInfo, err error) {
	path := f.Name()
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", path, cerr)
		}
	}()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	bw := bufio.NewWriterSize(cw, 1<<20)
	if err := fill(bw); err != nil {
		return fi, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fi, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fi, fmt.Errorf("syncing %s: %w", path, err)
	}
	return fileInfo{SHA256: hex.EncodeToString(h.Sum(nil)), Size: cw.n}, nil
}

// SyncDir fsyncs a directory so that entries created, renamed or removed
// in it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// setAside renames path to a fresh hidden name "<prefix><base>-<random>" in
// the same directory (prefix ".old-" or ".del-") and returns the new path.
func setAside(path, prefix string) (string, error) {
	dir, base := filepath.Split(path)
	for range 10 {
		aside := filepath.Join(dir, prefix+base+"-"+strings.ToLower(rand.Text()[:12]))
		if ok, err := exists(aside); err != nil {
			return "", err
		} else if ok {
			continue
		}
		if err := os.Rename(path, aside); err != nil {
			return "", err
		}
		return aside, nil
	}
	return "", fmt.Errorf("no free name to set %s aside", path)
}

// WriteSafetensors writes tensors and meta as one F32 safetensors file at
// path, atomically (see WriteFileAtomic). Use it to export weights for other
// tools.
func WriteSafetensors(path string, tensors map[string]Tensor, meta map[string]string) error {
	return writeAtomic(path, func(w io.Writer) error {
		_, err := EncodeSafetensors(w, tensors, meta)
		return err
	})
}

// WriteFileAtomic replaces path with data so that a crash leaves either the
// old or the new contents, never a mixture: it writes a new hidden temporary
// sibling created exclusively (O_EXCL, so a planted file or symlink there is
// never followed), fsyncs it, renames it over path and fsyncs the directory.
// A symlink at path itself is replaced, not followed.
func WriteFileAtomic(path string, data []byte) error {
	return writeAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func writeAtomic(path string, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := writeSync(f, fill); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, err
}
