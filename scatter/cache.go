package scatter

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"unsafe"
	"weak"

	"dptrain/internal/float16"
)

// scatCaches shares one memo among the live transforms of the same
// configuration (a second model of the same kind in a process, e.g. a
// hyper-parameter sweep, finds the maps already computed). Weak pointers let
// a memo go once no layer uses it.
var scatCaches struct {
	sync.Mutex
	m map[[5]int]weak.Pointer[scatCache]
}

func sharedScatCache(cfg [5]int, bytes int64, size int) *scatCache {
	scatCaches.Lock()
	defer scatCaches.Unlock()
	if scatCaches.m == nil {
		scatCaches.m = make(map[[5]int]weak.Pointer[scatCache])
	}
	if c := scatCaches.m[cfg].Value(); c != nil {
		return c
	}
	c := newScatCache(bytes, size)
	scatCaches.m[cfg] = weak.Make(c)
	return c
}

// scatCache memoises per-example outputs of a deterministic layer, keyed by
// the SHA-256 digest of the example's input bits, stored as float16. A key
// collision would hand one example's features to another (doubling the
// sensitivity for that pair), so the key is a collision-resistant hash:
// finding two inputs with the same SHA-256 is infeasible even for an
// adversary who chooses the inputs (unlike a seeded non-cryptographic
// hash, whose collisions are only unlikely for inputs that do not depend on
// the seed). It stops admitting entries when full; it never evicts. Safe
// for concurrent use.
type scatCache struct {
	size         int // floats per entry
	limit        int // max entries
	mu           sync.RWMutex
	m            map[scatKey][]uint16
	hits, misses atomic.Int64
}

// scatKey is the SHA-256 digest of an input example's float32 bits.
type scatKey = [sha256.Size]byte

func newScatCache(bytes int64, size int) *scatCache {
	per := int64(2*size + 64) // float16 values, map entry and slice header
	return &scatCache{size: size, limit: int(bytes / per), m: make(map[scatKey][]uint16)}
}

// key hashes the bits of x: the SHA-256 of its float32 values as they lie
// in memory (the memo lives in one process, so the byte order is fixed).
func (c *scatCache) key(_ *scatWork, x []float32) scatKey {
	if len(x) == 0 {
		return sha256.Sum256(nil)
	}
	return sha256.Sum256(unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*len(x)))
}

// get fills y from the entry of k and reports whether there was one.
func (c *scatCache) get(k scatKey, y []float32) bool {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok {
		c.misses.Add(1)
		return false
	}
	c.hits.Add(1)
	for i, h := range e {
		y[i] = float16.ToFloat32(h)
	}
	return true
}

// put rounds y to float16 precision in place and stores it under k if
// there is room.
func (c *scatCache) put(w *scatWork, k scatKey, y []float32) {
	if cap(w.half) < len(y) {
		w.half = make([]uint16, len(y))
	}
	h := w.half[:len(y)]
	for i, v := range y {
		h[i] = float16.FromFloat32(v)
		y[i] = float16.ToFloat32(h[i])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok || len(c.m) >= c.limit {
		return
	}
	c.m[k] = append([]uint16(nil), h...)
}

// CacheStats reports the hits, misses and stored examples of the layer's
// memo so far (shared with the other live layers of its configuration;
// zeros before the first Forward or without memoisation).
func (s *Transform) CacheStats() (hits, misses int64, entries int) {
	if s.cache == nil {
		return 0, 0, 0
	}
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return s.cache.hits.Load(), s.cache.misses.Load(), len(s.cache.m)
}
