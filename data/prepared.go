package data

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
)

const (
	manifestName    = "manifest.json"
	preparedFormat  = "dptrain-prepared"
	preparedVersion = 1
	labelBytes      = 4
)

// Manifest describes a prepared dataset: shards of fixed-size records, each
// a little-endian uint32 label followed by Channels×Height×Width uint8
// pixels in CHW layout.
type Manifest struct {
	Format          string   `json:"format"`
	Version         int      `json:"version"`
	Count           int      `json:"count"`
	Classes         []string `json:"classes"`
	Channels        int      `json:"channels"`
	Height          int      `json:"height"`
	Width           int      `json:"width"`
	RecordSize      int      `json:"record_size"`
	RecordsPerShard int      `json:"records_per_shard"`
	Layout          string   `json:"layout"`
	Resize          string   `json:"resize,omitempty"`
	Source          string   `json:"source,omitempty"`
	Skipped         int      `json:"skipped"`
	Shards          []Shard  `json:"shards"`
}

// Shard is one shard file of a prepared dataset.
type Shard struct {
	File   string `json:"file"`
	Count  int    `json:"count"`
	SHA256 string `json:"sha256"`
}

const recordLayout = "uint32le label, then CHW uint8 pixels"

// ParseManifest decodes and validates a manifest; name is used in errors.
func ParseManifest(b []byte, name string) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, &FormatError{File: name, Offset: -1, Msg: "bad manifest JSON", Err: err}
	}
	bad := func(field, format string, args ...any) *FormatError {
		return &FormatError{File: name, Offset: -1, Msg: "field " + field + ": " + fmt.Sprintf(format, args...)}
	}
	switch {
	case m.Format != preparedFormat:
		return nil, bad("format", "%q: expected %q", m.Format, preparedFormat)
	case m.Version != preparedVersion:
		err := bad("version", "%d: expected %d", m.Version, preparedVersion)
		err.Unsupported = m.Version > preparedVersion // written by a newer version
		return nil, err
	case len(m.Classes) == 0 || len(m.Classes) > 1<<24:
		return nil, bad("classes", "%d classes: expected 1 to %d", len(m.Classes), 1<<24)
	case m.Channels <= 0 || m.Height <= 0 || m.Width <= 0 || m.Channels > 64 || m.Height > 1<<15 || m.Width > 1<<15:
		return nil, bad("channels/height/width", "%d×%d×%d: expected positive sizes (channels ≤ 64, sides ≤ 32768)", m.Channels, m.Height, m.Width)
	case m.RecordSize != labelBytes+m.Channels*m.Height*m.Width:
		return nil, bad("record_size", "%d: expected %d (4-byte label + %d×%d×%d pixels)", m.RecordSize, labelBytes+m.Channels*m.Height*m.Width, m.Channels, m.Height, m.Width)
	case m.Count < 0:
		return nil, bad("count", "%d: expected >= 0", m.Count)
	case m.RecordsPerShard <= 0:
		return nil, bad("records_per_shard", "%d: expected > 0", m.RecordsPerShard)
	}
	total := 0
	for i, s := range m.Shards {
		last := i == len(m.Shards)-1
		if s.Count <= 0 || s.Count > m.RecordsPerShard || (!last && s.Count != m.RecordsPerShard) {
			return nil, bad(fmt.Sprintf("shards[%d].count", i), "%d: expected %d (at most %d in the last shard)", s.Count, m.RecordsPerShard, m.RecordsPerShard)
		}
		if s.File == "" || filepath.Base(s.File) != s.File {
			return nil, bad(fmt.Sprintf("shards[%d].file", i), "%q: expected a file name in the manifest's folder", s.File)
		}
		if len(s.SHA256) != 64 {
			return nil, bad(fmt.Sprintf("shards[%d].sha256", i), "%q: expected 64 hex digits", s.SHA256)
		}
		total += s.Count
	}
	if total != m.Count {
		return nil, bad("count", "%d, but the shards hold %d records", m.Count, total)
	}
	return &m, nil
}

// preparedDataset memory-maps the shards of a prepared dataset.
type preparedDataset struct {
	dir      string
	m        *Manifest
	shards   [][]byte
	releases []func() error
	labels   []int32
	pixels   int
	workers  int
	// lo, hi: the examples that may be read (OpenOptions.Part; else all).
	lo, hi int

	// SHA-256 of each shard as mapped: set when verified at open, else
	// computed by the first ContentDigest.
	sums     [][sha256.Size]byte
	sumsOnce sync.Once
	sumsErr  error
}

func (d *preparedDataset) Len() int             { return d.m.Count }
func (d *preparedDataset) NumClasses() int      { return len(d.m.Classes) }
func (d *preparedDataset) Classes() []string    { return d.m.Classes }
func (d *preparedDataset) Shape() (c, h, w int) { return d.m.Channels, d.m.Height, d.m.Width }
func (d *preparedDataset) Label(i int) int {
	d.checkPart(i)
	return int(d.labels[i])
}

// shardInPart reports whether shard si holds examples of the part opened.
func (d *preparedDataset) shardInPart(si int) bool {
	base := si * d.m.RecordsPerShard
	return base+d.m.Shards[si].Count > d.lo && base < d.hi
}

// checkPart panics if example i is outside the part opened.
func (d *preparedDataset) checkPart(i int) {
	if (i < d.lo || i >= d.hi) && i >= 0 && i < d.m.Count {
		panic(usagef("prepared dataset: example %d is outside the part [%d, %d) opened (OpenOptions.Part)", i, d.lo, d.hi))
	}
}

// Manifest returns the dataset's manifest (do not modify).
func (d *preparedDataset) Manifest() *Manifest { return d.m }

func (d *preparedDataset) Image(i int, dst []uint8) (err error) {
	checkImageArgs(i, d.m.Count, len(dst), d.pixels)
	d.checkPart(i)
	if d.shards == nil {
		panic(usagef("prepared dataset: Image after Close"))
	}
	s, r := i/d.m.RecordsPerShard, i%d.m.RecordsPerShard
	off := r*d.m.RecordSize + labelBytes
	// A shard truncated or rewritten after it was mapped faults (SIGBUS)
	// when read: turn the fault into an error naming the shard.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if e := recover(); e != nil {
			if re, ok := e.(runtime.Error); ok && isFault(re) {
				err = formatErr(d.shardPath(s), int64(off), "shard changed or was truncated while in use (it is memory-mapped): %v; re-create the prepared set and rerun", re)
				return
			}
			panic(e)
		}
	}()
	copy(dst[:d.pixels], d.shards[s][off:off+d.pixels])
	return nil
}

// isFault reports whether a runtime error is a memory fault (of a mapped
// file that shrank), as opposed to a programming error.
func isFault(e runtime.Error) bool {
	_, ok := e.(interface{ Addr() uintptr })
	return ok
}

func (d *preparedDataset) shardPath(s int) string { return filepath.Join(d.dir, d.m.Shards[s].File) }

// Close unmaps the shards; the dataset must not be used afterwards (Image
// then panics with a UsageError). A second Close does nothing.
func (d *preparedDataset) Close() error {
	var errs []error
	for _, r := range d.releases {
		errs = append(errs, r())
	}
	d.releases, d.shards = nil, nil
	return errors.Join(errs...)
}

// OpenPrepared opens a prepared dataset (see Prepare) in dir, memory-mapping
// its shards. Shard sizes and labels are always checked; SHA-256 checksums
// too unless opts.NoVerify. Close the result to unmap them.
func OpenPrepared(dir string, opts OpenOptions) (Dataset, error) {
	mpath := filepath.Join(dir, manifestName)
	b, err := os.ReadFile(mpath)
	if err != nil {
		return nil, fmt.Errorf("prepared dataset: %w (expected the output folder of dptrain prepare)", err)
	}
	m, err := ParseManifest(b, mpath)
	if err != nil {
		return nil, err
	}
	d := &preparedDataset{dir: dir, m: m, pixels: m.Channels * m.Height * m.Width, labels: make([]int32, m.Count), workers: opts.workers(), hi: m.Count}
	if opts.Part != nil {
		if d.lo, d.hi = opts.Part(m.Count); d.lo < 0 || d.hi < d.lo || d.hi > m.Count {
			panic(usagef("prepared dataset: part [%d, %d) of %d examples", d.lo, d.hi, m.Count))
		}
	}
	for _, s := range m.Shards {
		p := filepath.Join(dir, s.File)
		f, err := os.Open(p)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("prepared dataset %s: %w", mpath, err)
		}
		want := int64(s.Count) * int64(m.RecordSize)
		st, err := f.Stat()
		if err == nil && st.Size() != want {
			err = formatErr(p, min(st.Size(), want), "shard is %d bytes: expected %d (%d records of %d bytes)", st.Size(), want, s.Count, m.RecordSize)
		}
		var data []byte
		var release func() error
		if err == nil {
			data, release, err = mapFile(f, int(want))
		}
		f.Close()
		if err != nil {
			d.Close()
			return nil, err
		}
		d.shards = append(d.shards, data)
		d.releases = append(d.releases, release)
	}
	if err := d.check(dir, !opts.NoVerify); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// check reads the labels (and verifies and records the checksums) of all
// shards in parallel.
func (d *preparedDataset) check(dir string, verify bool) error {
	var sums [][sha256.Size]byte
	if verify {
		sums = make([][sha256.Size]byte, len(d.shards))
	}
	err := parallelShards(len(d.shards), d.workers, func(si int) error {
		s, data := d.m.Shards[si], d.shards[si]
		p := filepath.Join(dir, s.File)
		base := si * d.m.RecordsPerShard
		if !d.shardInPart(si) {
			// Outside the part: never read. Its checksum in the digest is
			// the manifest's (the rank holding it verifies it).
			if verify {
				if _, err := hex.Decode(sums[si][:], []byte(s.SHA256)); err != nil {
					return formatErr(p, -1, "manifest SHA-256 %q: %v", s.SHA256, err)
				}
			}
			return nil
		}
		if verify {
			sums[si] = sha256.Sum256(data)
			if got := hex.EncodeToString(sums[si][:]); got != s.SHA256 {
				return formatErr(p, -1, "SHA-256 %s: expected %s from the manifest (file corrupt or changed)", got, s.SHA256)
			}
		}
		for r := range s.Count {
			off := r * d.m.RecordSize
			l := binary.LittleEndian.Uint32(data[off:])
			if l >= uint32(len(d.m.Classes)) {
				return formatErr(p, int64(off), "label %d of record %d out of range: expected [0,%d)", l, r, len(d.m.Classes))
			}
			d.labels[base+r] = int32(l)
		}
		return nil
	})
	if err == nil {
		d.sums = sums
	}
	return err
}

// parallelShards runs fn(0) … fn(n-1) on at most workers goroutines and
// joins their errors.
func parallelShards(n, workers int, fn func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, max(workers, 1))
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func readFile(f *os.File, size int) ([]byte, func() error, error) {
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, nil, &FormatError{File: f.Name(), Offset: -1, Msg: fmt.Sprintf("reading %d bytes", size), Err: err}
	}
	return b, func() error { return nil }, nil
}

// shardWriter writes records into shard files of at most perShard records.
type shardWriter struct {
	dir      string
	m        *Manifest
	f        *os.File
	bw       *bufio.Writer
	h        hash.Hash
	n        int
	rec      []byte
	tmpNames []string
}

func newShardWriter(dir string, m *Manifest) *shardWriter {
	return &shardWriter{dir: dir, m: m, rec: make([]byte, m.RecordSize)}
}

func (w *shardWriter) write(label int, pix []uint8) error {
	if w.f == nil {
		name := fmt.Sprintf("shard-%05d.bin", len(w.m.Shards))
		// An exclusive, hidden temporary: never a file (or link) planted
		// at a predictable name.
		f, err := os.CreateTemp(w.dir, "."+name+".tmp-*")
		if err != nil {
			return err
		}
		w.f, w.bw, w.h, w.n = f, bufio.NewWriterSize(f, 1<<20), sha256.New(), 0
		w.m.Shards = append(w.m.Shards, Shard{File: name})
		w.tmpNames = append(w.tmpNames, f.Name())
	}
	binary.LittleEndian.PutUint32(w.rec, uint32(label))
	copy(w.rec[labelBytes:], pix)
	w.h.Write(w.rec)
	if _, err := w.bw.Write(w.rec); err != nil {
		return err
	}
	w.n++
	w.m.Count++
	if w.n == w.m.RecordsPerShard {
		return w.closeShard()
	}
	return nil
}

func (w *shardWriter) closeShard() error {
	if w.f == nil {
		return nil
	}
	s := &w.m.Shards[len(w.m.Shards)-1]
	s.Count, s.SHA256 = w.n, hex.EncodeToString(w.h.Sum(nil))
	err := w.bw.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err == nil {
		err = os.Rename(w.f0name(), filepath.Join(w.dir, s.File))
	}
	return err
}

func (w *shardWriter) f0name() string { return w.tmpNames[len(w.tmpNames)-1] }

// finish closes the last shard and writes the manifest atomically.
func (w *shardWriter) finish() error {
	if err := w.closeShard(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(w.m, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(w.dir, "."+manifestName+".tmp-*")
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(w.dir, manifestName))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// abort removes what was written.
func (w *shardWriter) abort() {
	if w.f != nil {
		w.f.Close()
	}
	for i, t := range w.tmpNames {
		os.Remove(t)
		os.Remove(filepath.Join(w.dir, w.m.Shards[i].File))
	}
}
