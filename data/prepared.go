package data

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
)

// maxPreparedCount bounds a manifest's counts (so that a crafted one
// cannot make the reader allocate without bound, or overflow a size).
const maxPreparedCount = 1 << 32

const (
	manifestName    = "manifest.json"
	preparedFormat  = "dptrain-prepared"
	preparedVersion = 1 // fixed-size records
	variableVersion = 2 // variable-size images (ShortSide)
	labelBytes      = 4
	// variableIndexEntry is the size of one record's entry in a variable
	// shard's index: uint64 offset, uint32 label, uint16 height, width.
	variableIndexEntry = 16
)

// Manifest describes a prepared dataset. Version 1: shards of fixed-size
// records, each a little-endian uint32 label followed by
// Channels×Height×Width uint8 pixels in CHW layout. Version 2 (ShortSide
// > 0): images of varying size, each with its shorter side ShortSide;
// a shard holds the images' CHW pixels back to back, then an index of one
// 16-byte entry per image (uint64le offset of its pixels, uint32le label,
// uint16le height, uint16le width), so that opening reads only the
// indexes. Height and Width are ShortSide: Image gives the centre
// ShortSide×ShortSide square, ImageSized the whole image.
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
	ShortSide       int      `json:"short_side,omitempty"`
	MaxLongSide     int      `json:"max_long_side,omitempty"`
	Source          string   `json:"source,omitempty"`
	Skipped         int      `json:"skipped"`
	Shards          []Shard  `json:"shards"`
}

// Shard is one shard file of a prepared dataset.
type Shard struct {
	File   string `json:"file"`
	Count  int    `json:"count"`
	Bytes  int64  `json:"bytes,omitempty"` // version 2: the file's size
	SHA256 string `json:"sha256"`
}

const (
	recordLayout   = "uint32le label, then CHW uint8 pixels"
	variableLayout = "CHW uint8 pixels of each image back to back, then per image uint64le offset, uint32le label, uint16le height, uint16le width"
)

// variable reports whether m is the variable-size layout (version 2).
func (m *Manifest) variable() bool { return m.Version == variableVersion }

// shardBytes is the size shard i must have.
func (m *Manifest) shardBytes(i int) int64 {
	if m.variable() {
		return m.Shards[i].Bytes
	}
	return int64(m.Shards[i].Count) * int64(m.RecordSize)
}

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
	case m.Version != preparedVersion && m.Version != variableVersion:
		err := bad("version", "%d: expected %d or %d", m.Version, preparedVersion, variableVersion)
		err.Unsupported = m.Version > variableVersion // written by a newer version
		return nil, err
	case len(m.Classes) == 0 || len(m.Classes) > 1<<24:
		return nil, bad("classes", "%d classes: expected 1 to %d", len(m.Classes), 1<<24)
	case m.Channels <= 0 || m.Height <= 0 || m.Width <= 0 || m.Channels > 64 || m.Height > 1<<15 || m.Width > 1<<15:
		return nil, bad("channels/height/width", "%d×%d×%d: expected positive sizes (channels ≤ 64, sides ≤ 32768)", m.Channels, m.Height, m.Width)
	case m.Count < 0 || m.Count > maxPreparedCount:
		return nil, bad("count", "%d: expected 0 to %d", m.Count, maxPreparedCount)
	}
	if m.variable() {
		switch {
		case m.ShortSide <= 0 || m.ShortSide > MaxImageSize || m.Height != m.ShortSide || m.Width != m.ShortSide || m.Channels != 3:
			return nil, bad("short_side", "%d with %d×%d×%d: expected 1 to %d, and 3×short_side×short_side", m.ShortSide, m.Channels, m.Height, m.Width, MaxImageSize)
		case m.MaxLongSide < m.ShortSide || m.MaxLongSide > MaxAspect*m.ShortSide:
			return nil, bad("max_long_side", "%d: expected %d to %d (short_side to %d× it)", m.MaxLongSide, m.ShortSide, MaxAspect*m.ShortSide, MaxAspect)
		}
	} else {
		switch {
		case m.RecordSize != labelBytes+m.Channels*m.Height*m.Width:
			return nil, bad("record_size", "%d: expected %d (4-byte label + %d×%d×%d pixels)", m.RecordSize, labelBytes+m.Channels*m.Height*m.Width, m.Channels, m.Height, m.Width)
		case m.RecordsPerShard <= 0:
			return nil, bad("records_per_shard", "%d: expected > 0", m.RecordsPerShard)
		}
	}
	total := 0
	for i, s := range m.Shards {
		last := i == len(m.Shards)-1
		if s.Count > maxPreparedCount {
			return nil, bad(fmt.Sprintf("shards[%d].count", i), "%d: expected at most %d", s.Count, maxPreparedCount)
		}
		if m.variable() {
			minBytes := int64(s.Count) * (variableIndexEntry + 3*int64(m.ShortSide)*int64(m.ShortSide))
			if s.Count <= 0 || s.Bytes < minBytes {
				return nil, bad(fmt.Sprintf("shards[%d].count/bytes", i), "%d images in %d bytes: expected > 0 images of at least %d bytes each", s.Count, s.Bytes, minBytes/int64(max(s.Count, 1)))
			}
		} else if s.Count <= 0 || s.Count > m.RecordsPerShard || (!last && s.Count != m.RecordsPerShard) {
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
	starts   []int // index of each shard's first example
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
	base := d.starts[si]
	return base+d.m.Shards[si].Count > d.lo && base < d.hi
}

// locate returns the shard holding example i and its position there.
func (d *preparedDataset) locate(i int) (s, r int) {
	if !d.m.variable() {
		return i / d.m.RecordsPerShard, i % d.m.RecordsPerShard
	}
	s = sort.Search(len(d.starts), func(k int) bool { return d.starts[k] > i }) - 1
	return s, i - d.starts[s]
}

// entry returns a variable shard's index entry r: the offset of the
// pixels, their height and width.
func (d *preparedDataset) entry(s, r int) (off, h, w int) {
	data := d.shards[s]
	e := data[len(data)-variableIndexEntry*d.m.Shards[s].Count+variableIndexEntry*r:]
	return int(binary.LittleEndian.Uint64(e)), int(binary.LittleEndian.Uint16(e[12:])), int(binary.LittleEndian.Uint16(e[14:]))
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
	_, _, err = d.read(i, dst, true)
	return err
}

// ImageSized copies example i whole into dst (len ≥ MaxPixels) and
// returns its size: for the variable layout the stored image (shorter
// side ShortSide), else Shape's.
func (d *preparedDataset) ImageSized(i int, dst []uint8) (h, w int, err error) {
	checkImageArgs(i, d.m.Count, len(dst), d.MaxPixels())
	return d.read(i, dst, false)
}

// MaxPixels is the largest c·h·w of an example ImageSized may return.
func (d *preparedDataset) MaxPixels() int {
	if d.m.variable() {
		return 3 * d.m.ShortSide * d.m.MaxLongSide
	}
	return d.pixels
}

// read copies example i into dst: whole, or (crop) its centre
// Height×Width square.
func (d *preparedDataset) read(i int, dst []uint8, crop bool) (h, w int, err error) {
	d.checkPart(i)
	if d.shards == nil {
		panic(usagef("prepared dataset: Image after Close"))
	}
	s, r := d.locate(i)
	var off int
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
	if !d.m.variable() {
		off = r*d.m.RecordSize + labelBytes
		copy(dst[:d.pixels], d.shards[s][off:off+d.pixels])
		return d.m.Height, d.m.Width, nil
	}
	off, h, w = d.entry(s, r)
	// checkIndex validated the index at open; a shard rewritten in place
	// since (same size) may say anything: check again what is used.
	if indexAt := len(d.shards[s]) - variableIndexEntry*d.m.Shards[s].Count; off < 0 || min(h, w) != d.m.ShortSide ||
		max(h, w) > d.m.MaxLongSide || off > indexAt-3*h*w {
		return 0, 0, formatErr(d.shardPath(s), -1, "image %d's index entry (offset %d, %d×%d) changed since the shard was opened: re-create the prepared set and rerun", r, off, h, w)
	}
	src := d.shards[s][off : off+3*h*w]
	if !crop {
		copy(dst, src)
		return h, w, nil
	}
	side := d.m.ShortSide
	y0, x0 := (h-side)/2, (w-side)/2
	for ch := range 3 {
		for y := range side {
			copy(dst[(ch*side+y)*side:(ch*side+y+1)*side], src[(ch*h+y0+y)*w+x0:])
		}
	}
	return side, side, nil
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
	d := &preparedDataset{dir: dir, m: m, pixels: m.Channels * m.Height * m.Width, workers: opts.workers(), hi: m.Count}
	d.starts = make([]int, len(m.Shards))
	for i := 1; i < len(m.Shards); i++ {
		d.starts[i] = d.starts[i-1] + m.Shards[i-1].Count
	}
	if opts.Part != nil {
		if d.lo, d.hi = opts.Part(m.Count); d.lo < 0 || d.hi < d.lo || d.hi > m.Count {
			panic(usagef("prepared dataset: part [%d, %d) of %d examples", d.lo, d.hi, m.Count))
		}
	}
	for si, s := range m.Shards {
		p := filepath.Join(dir, s.File)
		f, err := os.Open(p)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("prepared dataset %s: %w", mpath, err)
		}
		want := m.shardBytes(si)
		st, err := f.Stat()
		if err == nil && st.Size() != want {
			if m.variable() {
				err = formatErr(p, min(st.Size(), want), "shard is %d bytes: expected %d (from the manifest)", st.Size(), want)
			} else {
				err = formatErr(p, min(st.Size(), want), "shard is %d bytes: expected %d (%d records of %d bytes)", st.Size(), want, s.Count, m.RecordSize)
			}
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
	// The shards' sizes, checked above, back every count: now the labels.
	d.labels = make([]int32, m.Count)
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
		base := d.starts[si]
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
		if d.m.variable() {
			return d.checkIndex(si, p, base)
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

// checkIndex reads and checks a variable shard's index (the only part of
// it read at open): each image's pixels follow the previous one's, its
// shorter side is ShortSide, its longer at most MaxLongSide, its label in
// range, and the last image ends where the index begins.
func (d *preparedDataset) checkIndex(si int, p string, base int) error {
	data, n := d.shards[si], d.m.Shards[si].Count
	indexAt := len(data) - variableIndexEntry*n
	next := 0
	for r := range n {
		e := data[indexAt+variableIndexEntry*r:]
		off := int(binary.LittleEndian.Uint64(e))
		l := binary.LittleEndian.Uint32(e[8:])
		h, w := int(binary.LittleEndian.Uint16(e[12:])), int(binary.LittleEndian.Uint16(e[14:]))
		at := int64(indexAt + variableIndexEntry*r)
		switch {
		case off != next:
			return formatErr(p, at, "image %d at offset %d: expected %d (right after the previous image)", r, off, next)
		case min(h, w) != d.m.ShortSide || max(h, w) > d.m.MaxLongSide:
			return formatErr(p, at, "image %d is %d×%d: expected a shorter side of %d and a longer one of at most %d", r, h, w, d.m.ShortSide, d.m.MaxLongSide)
		case l >= uint32(len(d.m.Classes)):
			return formatErr(p, at, "label %d of image %d out of range: expected [0,%d)", l, r, len(d.m.Classes))
		}
		next = off + 3*h*w
		if next > indexAt {
			return formatErr(p, at, "image %d ends at %d, past the index at %d", r, next, indexAt)
		}
		d.labels[base+r] = int32(l)
	}
	if next != indexAt {
		return formatErr(p, int64(next), "the images end at %d: expected the index to start there, at %d", next, indexAt)
	}
	return nil
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
