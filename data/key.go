package data

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	mrand "math/rand/v2"
)

// Key is the 256-bit key of the sampling and augmentation generators.
type Key [32]byte

// keyFromSeedDomain separates KeyFromSeed's hash from every other use of
// SHA-256 on a seed.
const keyFromSeedDomain = "dptrain/data: sampling and augmentation key from a public seed, v1\x00"

// KeyFromSeed derives the key of a reproducible run from a public seed
// (seeded mode): SHA-256 of a fixed domain-separation string and the seed
// (8 bytes, little-endian). Anyone who knows the seed can recompute every
// batch and augmentation, so privacy then rests on the seed staying secret.
// The value is fixed (seeded runs repeat only while it is); the seed's
// other uses, the noise and the initial weights, are derived in
// internal/seed, whose documentation lists all of them.
func KeyFromSeed(seed uint64) Key {
	var b [len(keyFromSeedDomain) + 8]byte
	copy(b[:], keyFromSeedDomain)
	binary.LittleEndian.PutUint64(b[len(keyFromSeedDomain):], seed)
	return sha256.Sum256(b[:])
}

// NewSecretKey draws a key from crypto/rand (secure mode).
func NewSecretKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("sampling key: reading 32 bytes from crypto/rand: %w", err)
	}
	return k, nil
}

// stream tags: the generators of different purposes never share a seed.
type streamTag uint8

const (
	streamPoisson streamTag = 1 // Poisson batch membership; step = training step
	streamShuffle streamTag = 2 // shuffle permutation; step = epoch
	streamAugment streamTag = 3 // augmentation of (step, example index, augmentation k)
)

// streamInputLen is the PRF input: key ‖ tag ‖ step ‖ index ‖ k with
// fixed widths 32 + 1 + 8 + 8 + 4 bytes, little-endian. At 53 bytes it is
// one SHA-256 block.
const streamInputLen = 32 + 1 + 8 + 8 + 4

// streamSeed is the PRF that keys one generator: SHA-256(key ‖ tag ‖ step ‖
// index ‖ k), fixed-width little-endian (step and index 8 bytes, k 4). The
// encoding is injective, so distinct (tag, step, index, k) give
// independent-looking seeds under a secret key. Streams without an index
// or k pass 0. It does not allocate. It panics with a UsageError if k is
// outside [0, 2³²).
func streamSeed(key *Key, tag streamTag, step int64, index, k int) [32]byte {
	if k < 0 || uint64(k) > math.MaxUint32 {
		panic(usagef("augmentation number %d: expected in [0, 2^32)", k))
	}
	var b [streamInputLen]byte
	copy(b[:32], key[:])
	b[32] = byte(tag)
	binary.LittleEndian.PutUint64(b[33:], uint64(step))
	binary.LittleEndian.PutUint64(b[41:], uint64(index))
	binary.LittleEndian.PutUint32(b[49:], uint32(k))
	return sha256.Sum256(b[:])
}

// newStream returns the ChaCha8 generator of one (tag, step, index, k),
// seeded with streamSeed. Hot paths reseed a ChaCha8 they hold instead
// (seedStream).
func newStream(key *Key, tag streamTag, step int64, index, k int) *mrand.ChaCha8 {
	return mrand.NewChaCha8(streamSeed(key, tag, step, index, k))
}

// seedStream reseeds r in place as newStream(key, tag, step, index, k)
// would seed a new one (no allocation).
func seedStream(r *mrand.ChaCha8, key *Key, tag streamTag, step int64, index, k int) {
	r.Seed(streamSeed(key, tag, step, index, k))
}
