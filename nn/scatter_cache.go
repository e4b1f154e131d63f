package nn

import (
	"crypto/sha256"
	"math"
	"sync"
	"sync/atomic"
	"unsafe"
	"weak"
)

// scatCaches shares one memo among the live Scattering layers of the same
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
		y[i] = halfToFloat32(h)
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
		h[i] = float32ToHalf(v)
		y[i] = halfToFloat32(h[i])
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
func (s *Scattering) CacheStats() (hits, misses int64, entries int) {
	if s.cache == nil {
		return 0, 0, 0
	}
	s.cache.mu.RLock()
	defer s.cache.mu.RUnlock()
	return s.cache.hits.Load(), s.cache.misses.Load(), len(s.cache.m)
}

// float32ToHalf rounds f to the nearest IEEE 754 binary16 value (ties to
// even; overflow to ±Inf; NaN stays NaN).
func float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal (or zero) result: m·2⁻²⁴ with m = round(|f|·2²⁴).
		shift := uint(14 - e)
		if shift > 24 {
			return sign
		}
		full := mant | 0x800000
		m := full >> shift
		rem, half := full&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > half || (rem == half && m&1 == 1) {
			m++
		}
		return sign | uint16(m)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry into the exponent is right, up to Inf
	}
	return sign | uint16(h)
}

// halfToFloat32 converts an IEEE 754 binary16 value exactly.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
