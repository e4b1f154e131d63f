package featcache

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"dptrain/checkpoint"
	"dptrain/internal/float16"
)

// BuildOptions tune Build.
type BuildOptions struct {
	// ChunkSize is the number of examples computed per call of fill and
	// persisted per chunk file. 0 picks one so that the float32 buffer
	// handed to fill is about 64 MiB. The effective chunk size (at most N)
	// is part of the build's identity: chunks finished with another one
	// are not reused.
	ChunkSize int
	// Progress, if not nil, is called with the number of examples done so
	// far and N: first once per chunk recovered from an interrupted build
	// (in chunk order), then after each chunk computed and persisted.
	Progress func(done, total int)
}

const defaultChunkBytes = 64 << 20

// PartialDir returns the directory where Build keeps the finished chunks
// of the cache at path until the cache is complete: path + ".partial".
func PartialDir(path string) string { return path + ".partial" }

// testHook, if set by a test, is called at the named stages of the final
// assembly: "before-rename" (the temporary file is complete and synced)
// and "after-rename" (path is in place, the partial directory not yet
// removed).
var testHook func(stage string)

// Build computes the cache described by spec and writes it to path,
// atomically replacing any file there. fill(lo, hi, feats, labels) must
// compute examples [lo, hi): feats has (hi-lo)·Variants·D elements in row
// order (example-major, then variant, then the feature vector) and labels
// hi-lo; both are zeroed before each call. Build converts the features to
// float16 (round to nearest even) and refuses NaN and |x| > 65504 with a
// *ValueError naming the example.
//
// Examples are computed in chunks of opt.ChunkSize; each finished chunk is
// persisted under PartialDir(path), so that Build called again with the
// same spec and chunk size after a failure or a crash calls fill only for
// the chunks not yet finished. Chunks of another spec or chunk size are
// discarded. When every chunk is done, the cache is assembled in a
// temporary file in path's directory, synced, renamed to path, and the
// partial directory is removed. See the package documentation for the
// crash semantics. An error of fill is returned wrapped, with the
// finished chunks kept.
//
// Build panics if fill is nil. One process at a time may build a given
// path.
func Build(path string, spec Spec, opt BuildOptions, fill func(lo, hi int, feats []float32, labels []int32) error) error {
	if fill == nil {
		panic("featcache: Build: nil fill function")
	}
	dim, err := checkSpec(spec)
	if err == nil && opt.ChunkSize < 0 {
		err = fmt.Errorf("ChunkSize = %d, want ≥ 0", opt.ChunkSize)
	}
	if err != nil {
		return fmt.Errorf("featcache: build %s: %w: %v", path, ErrInvalidSpec, err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("featcache: build %s: is a directory", path)
	}
	b := &builder{
		path:  path,
		pdir:  PartialDir(path),
		spec:  spec,
		dim:   dim,
		fill:  fill,
		progr: opt.Progress,
	}
	b.spec.Shape = append([]int(nil), spec.Shape...)
	b.rowElems = spec.Variants * dim
	b.chunk = opt.ChunkSize
	if b.chunk == 0 {
		b.chunk = max(1, defaultChunkBytes/(4*b.rowElems))
	}
	b.chunk = min(b.chunk, spec.N)
	b.nchunks = (spec.N + b.chunk - 1) / b.chunk
	b.specJSON, err = json.MarshalIndent(struct {
		FormatVersion int               `json:"format_version"`
		Key           string            `json:"key"`
		N             int               `json:"n"`
		Variants      int               `json:"variants"`
		Shape         []int             `json:"shape"`
		Meta          map[string]string `json:"meta,omitempty"`
		ChunkSize     int               `json:"chunk_size"`
	}{FormatVersion, spec.Key, spec.N, spec.Variants, b.spec.Shape, spec.Meta, b.chunk}, "", "  ")
	if err != nil {
		return fmt.Errorf("featcache: build %s: %w", path, err)
	}
	b.specJSON = append(b.specJSON, '\n')
	fp := sha256.Sum256(b.specJSON)
	b.fingerprint = hex.EncodeToString(fp[:])
	b.header = header{
		FormatVersion: FormatVersion, Key: spec.Key, N: spec.N, Variants: spec.Variants,
		Dim: dim, Shape: b.spec.Shape, Meta: spec.Meta, DataSHA256: strings.Repeat("0", 64),
	}
	hdr, err := json.Marshal(b.header)
	if err != nil {
		return fmt.Errorf("featcache: build %s: %w", path, err)
	}
	if len(hdr) > maxHeaderLen {
		return fmt.Errorf("featcache: build %s: %w: header of %d bytes exceeds the limit of %d (Meta too large)", path, ErrInvalidSpec, len(hdr), maxHeaderLen)
	}
	if err := b.run(); err != nil {
		return fmt.Errorf("featcache: build %s: %w", path, err)
	}
	return nil
}

type builder struct {
	path, pdir  string
	spec        Spec
	dim         int
	rowElems    int // Variants·D
	chunk       int // examples per chunk
	nchunks     int
	specJSON    []byte // contents of pdir/spec.json
	fingerprint string // SHA-256 of specJSON
	header      header // of the cache file, with a placeholder data checksum
	fill        func(lo, hi int, feats []float32, labels []int32) error
	progr       func(done, total int)
}

func (b *builder) bounds(c int) (lo, hi int) {
	return c * b.chunk, min(b.spec.N, (c+1)*b.chunk)
}

func (b *builder) chunkPath(c int) string {
	return filepath.Join(b.pdir, fmt.Sprintf("chunk-%08d", c))
}

func (b *builder) progress(done int) {
	if b.progr != nil {
		b.progr(done, b.spec.N)
	}
}

func (b *builder) run() error {
	if err := removeTemps(filepath.Dir(b.path), "."+filepath.Base(b.path)+".tmp-"); err != nil {
		return err
	}
	have, err := b.preparePartial()
	if err != nil {
		return err
	}
	done := 0
	for c, ok := range have {
		if ok {
			lo, hi := b.bounds(c)
			done += hi - lo
			b.progress(done)
		}
	}
	feats := make([]float32, b.chunk*b.rowElems)
	labels := make([]int32, b.chunk)
	for c, ok := range have {
		if ok {
			continue
		}
		lo, hi := b.bounds(c)
		if err := b.compute(c, feats[:(hi-lo)*b.rowElems], labels[:hi-lo]); err != nil {
			return err
		}
		done += hi - lo
		b.progress(done)
	}
	return b.assemble()
}

// preparePartial makes sure pdir exists and belongs to this build, and
// reports which chunks are already finished (valid chunk files).
func (b *builder) preparePartial() ([]bool, error) {
	have := make([]bool, b.nchunks)
	specPath := filepath.Join(b.pdir, "spec.json")
	got, err := os.ReadFile(specPath)
	if err != nil || !bytes.Equal(got, b.specJSON) {
		// Absent, interrupted before spec.json, or another build's: start
		// afresh.
		if err := os.RemoveAll(b.pdir); err != nil {
			return nil, err
		}
		if err := os.Mkdir(b.pdir, 0o755); err != nil {
			return nil, err
		}
		if err := checkpoint.SyncDir(filepath.Dir(b.pdir)); err != nil {
			return nil, err
		}
		if err := checkpoint.WriteFileAtomic(specPath, b.specJSON); err != nil {
			return nil, fmt.Errorf("writing %s: %w", specPath, err)
		}
		return have, nil
	}
	if err := removeTemps(b.pdir, "."); err != nil {
		return nil, err
	}
	for c := range have {
		_, _, err := b.readChunk(c)
		switch {
		case err == nil:
			have[c] = true
		case errors.Is(err, os.ErrNotExist):
		default: // damaged: recompute it
			if err := os.Remove(b.chunkPath(c)); err != nil {
				return nil, err
			}
		}
	}
	return have, nil
}

// compute fills, converts and persists chunk c.
func (b *builder) compute(c int, feats []float32, labels []int32) error {
	lo, hi := b.bounds(c)
	clear(feats)
	clear(labels)
	if err := b.fill(lo, hi, feats, labels); err != nil {
		return fmt.Errorf("fill examples [%d, %d): %w", lo, hi, err)
	}
	data := make([]byte, 2*len(feats)+4*len(labels))
	for k, x := range feats {
		if x != x || x > maxFloat16 || x < -maxFloat16 {
			e := &ValueError{Example: lo + k/b.rowElems, Variant: k / b.dim % b.spec.Variants, Element: k % b.dim, Value: x, Err: ErrOverflow}
			if x != x {
				e.Err = ErrNaN
			}
			return e
		}
		binary.LittleEndian.PutUint16(data[2*k:], float16.FromFloat32(x))
	}
	lb := data[2*len(feats):]
	for k, l := range labels {
		binary.LittleEndian.PutUint32(lb[4*k:], uint32(l))
	}
	sum := sha256.Sum256(data)
	hdr, err := json.Marshal(chunkHeader{
		FormatVersion: FormatVersion, Key: b.spec.Key, Fingerprint: b.fingerprint,
		Chunk: c, Lo: lo, Hi: hi, DataSHA256: hex.EncodeToString(sum[:]),
	})
	if err != nil {
		return err
	}
	name := b.chunkPath(c)
	if err := checkpoint.WriteFileAtomic(name, append(encodePrefix(chunkMagic, hdr), data...)); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// readChunk reads and verifies chunk file c and returns its float16
// features and int32 labels.
func (b *builder) readChunk(c int) (feats, labels []byte, err error) {
	name := b.chunkPath(c)
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) ([]byte, []byte, error) { return nil, nil, fmt.Errorf("%s: %w", name, err) }
	hdr, off, err := readPrefix(bytes.NewReader(data), int64(len(data)), chunkMagic)
	if err != nil {
		return fail(err)
	}
	var h chunkHeader
	if err := decodeJSON(hdr, &h); err != nil {
		return fail(err)
	}
	lo, hi := b.bounds(c)
	if h.Key != b.spec.Key || h.Fingerprint != b.fingerprint || h.Chunk != c || h.Lo != lo || h.Hi != hi {
		return fail(corruptf("chunk header %+v does not belong to chunk %d [%d, %d) of this build", h, c, lo, hi))
	}
	sum, err := decodeSHA256("data_sha256", h.DataSHA256)
	if err != nil {
		return fail(err)
	}
	fl := (hi - lo) * b.rowElems * 2
	if want := off + int64(fl+(hi-lo)*4); int64(len(data)) != want {
		return fail(corruptf("file size %d, want %d", len(data), want))
	}
	d := data[off:]
	if s := sha256.Sum256(d); !bytes.Equal(s[:], sum) {
		return fail(corruptf("data checksum mismatch"))
	}
	return d[:fl], d[fl:], nil
}

// assemble writes the cache file from the finished chunks.
func (b *builder) assemble() (err error) {
	dir := filepath.Dir(b.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(b.path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	h := b.header
	hdr, err := json.Marshal(h)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if _, err := bw.Write(encodePrefix(fileMagic, hdr)); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	hash := sha256.New()
	w := io.MultiWriter(bw, hash)
	labels := make([]byte, 0, 4*b.spec.N)
	for c := range b.nchunks {
		feats, l, err := b.readChunk(c)
		if err != nil {
			return err
		}
		if _, err := w.Write(feats); err != nil {
			return fmt.Errorf("writing %s: %w", tmp, err)
		}
		labels = append(labels, l...)
	}
	if _, err := w.Write(labels); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	// Now that the data checksum is known, rewrite the header (same length).
	h.DataSHA256 = hex.EncodeToString(hash.Sum(nil))
	final, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if len(final) != len(hdr) {
		panic("featcache: internal error: header length changed")
	}
	if _, err := f.WriteAt(encodePrefix(fileMagic, final), 0); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return fmt.Errorf("closing %s: %w", tmp, cerr)
	}
	if testHook != nil {
		testHook("before-rename")
	}
	if err := os.Rename(tmp, b.path); err != nil {
		return err
	}
	if err := checkpoint.SyncDir(dir); err != nil {
		return err
	}
	if testHook != nil {
		testHook("after-rename")
	}
	if err := os.RemoveAll(b.pdir); err != nil {
		return err
	}
	return checkpoint.SyncDir(dir)
}

// removeTemps removes the entries of dir whose names start with prefix:
// temporary files of an interrupted write.
func removeTemps(dir, prefix string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && !e.IsDir() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
