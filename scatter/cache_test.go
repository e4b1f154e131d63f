package scatter

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"testing"
)

// TestScatterCacheKeyIsSHA256OfBits: the memo key is the SHA-256 of the
// example's float32 bits, so it tells apart inputs that differ in any bit
// (here: +0 and −0, and one ulp).
func TestScatterCacheKeyIsSHA256OfBits(t *testing.T) {
	c := newScatCache(1<<20, 4)
	w := &scatWork{}
	x := []float32{1, 0, -2.5, 3}
	k0 := c.key(w, x)
	for i, tweak := range []func([]float32){
		func(v []float32) { v[1] = float32(math.Copysign(0, -1)) },
		func(v []float32) { v[2] = math.Nextafter32(v[2], 0) },
	} {
		y := append([]float32(nil), x...)
		tweak(y)
		if c.key(w, y) == k0 {
			t.Errorf("tweak %d: same key for different bits", i)
		}
	}
	if c.key(w, append([]float32(nil), x...)) != k0 {
		t.Error("same bits, different key")
	}
}

// BenchmarkScatterCacheKey times the memo key of one 3×32×32 example:
// SHA-256 (the key) against the two seeded 64-bit maphashes it replaced.
func BenchmarkScatterCacheKey(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 3*32*32)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	c := newScatCache(1<<20, len(x))
	w := &scatWork{}
	b.Run("sha256", func(b *testing.B) {
		b.SetBytes(int64(4 * len(x)))
		for b.Loop() {
			c.key(w, x)
		}
	})
	b.Run("maphash128", func(b *testing.B) {
		s0, s1 := maphash.MakeSeed(), maphash.MakeSeed()
		buf := make([]byte, 4*len(x))
		b.SetBytes(int64(4 * len(x)))
		for b.Loop() {
			for i, v := range x {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			_ = [2]uint64{maphash.Bytes(s0, buf), maphash.Bytes(s1, buf)}
		}
	})
}
