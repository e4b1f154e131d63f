package featcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"sync"

	"dptrain/internal/float16"
)

// Cache is an open, verified cache file, memory-mapped read-only. Its
// methods may be called concurrently, except Close.
type Cache struct {
	path   string
	spec   Spec
	dim    int
	mapped []byte // the whole file; nil once closed
	feats  []byte // N·Variants·D little-endian float16
	labels []byte // N little-endian int32
}

// Open maps the cache file at path and verifies it completely: magic,
// header length and checksum, format version, every header field, the
// file size, the key (a cache built for another key is stale: ErrStale),
// and the SHA-256 of the whole data section. The last check reads the
// whole file once (SHA-256 runs at roughly 1–2 GB/s per core, so a 10 GB
// cache takes several seconds to open) and leaves it in the page cache.
// Use Exists for a cheap check of the header alone.
func Open(path, key string) (*Cache, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errPath(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, errPath(path, err)
	}
	switch {
	case fi.IsDir():
		return nil, errPath(path, corruptf("is a directory, not a cache file"))
	case !fi.Mode().IsRegular():
		return nil, errPath(path, corruptf("not a regular file (mode %v)", fi.Mode()))
	case fi.Size() == 0:
		return nil, errPath(path, corruptf("empty file"))
	case fi.Size() > math.MaxInt:
		return nil, errPath(path, corruptf("file too large to map (%d bytes)", fi.Size()))
	}
	m, err := mapFile(f, int(fi.Size()))
	if err != nil {
		return nil, errPath(path, fmt.Errorf("mapping: %w", err))
	}
	c, err := newCache(path, key, m)
	if err != nil {
		_ = unmapFile(m)
		return nil, errPath(path, err)
	}
	return c, nil
}

func newCache(path, key string, m []byte) (*Cache, error) {
	cf, err := checkFile(bytes.NewReader(m), int64(len(m)), key)
	if err != nil {
		return nil, err
	}
	data := m[cf.off:]
	if sum := sha256.Sum256(data); !bytes.Equal(sum[:], cf.sum) {
		return nil, corruptf("data checksum mismatch (SHA-256 of the %d bytes of features and labels)", len(data))
	}
	return &Cache{
		path:   path,
		spec:   cf.spec,
		dim:    cf.dim,
		mapped: m,
		feats:  data[:cf.featLen:cf.featLen],
		labels: data[cf.featLen:],
	}, nil
}

// Spec returns the cache's Spec (a copy; Meta is nil when empty).
func (c *Cache) Spec() Spec {
	s := c.spec
	s.Shape = slices.Clone(s.Shape)
	s.Meta = maps.Clone(s.Meta)
	return s
}

// Path returns the file name given to Open.
func (c *Cache) Path() string { return c.path }

// Label returns the label of example i. It panics if i is out of range or
// the cache is closed.
func (c *Cache) Label(i int) int32 {
	c.check("Label")
	if uint(i) >= uint(c.spec.N) {
		panic(fmt.Sprintf("featcache: Label: example %d out of range [0, %d)", i, c.spec.N))
	}
	return int32(binary.LittleEndian.Uint32(c.labels[4*i:]))
}

// Row decodes the feature vector of example i, variant v into dst, which
// must have length D. It panics if len(dst) ≠ D, i or v is out of range,
// or the cache is closed.
func (c *Cache) Row(dst []float32, i, v int) {
	c.check("Row")
	if len(dst) != c.dim {
		panic(fmt.Sprintf("featcache: Row: len(dst) = %d, want D = %d", len(dst), c.dim))
	}
	if uint(i) >= uint(c.spec.N) {
		panic(fmt.Sprintf("featcache: Row: example %d out of range [0, %d)", i, c.spec.N))
	}
	if uint(v) >= uint(c.spec.Variants) {
		panic(fmt.Sprintf("featcache: Row: variant %d out of range [0, %d)", v, c.spec.Variants))
	}
	off := (i*c.spec.Variants + v) * c.dim * 2
	src := c.feats[off : off+2*len(dst)]
	tab := f16Table()
	for j := range dst {
		dst[j] = tab[binary.LittleEndian.Uint16(src[2*j:])]
	}
}

// Close unmaps the file. Further calls of Close return nil; other methods
// panic after Close.
func (c *Cache) Close() error {
	if c.mapped == nil {
		return nil
	}
	m := c.mapped
	c.mapped, c.feats, c.labels = nil, nil, nil
	if err := unmapFile(m); err != nil {
		return errPath(c.path, fmt.Errorf("unmapping: %w", err))
	}
	return nil
}

func (c *Cache) check(op string) {
	if c.mapped == nil {
		panic("featcache: " + op + " on a closed Cache")
	}
}

// f16Table maps every binary16 bit pattern to its float32 value.
var f16Table = sync.OnceValue(func() *[1 << 16]float32 {
	t := new([1 << 16]float32)
	for h := range t {
		t[h] = float16.ToFloat32(uint16(h))
	}
	return t
})
