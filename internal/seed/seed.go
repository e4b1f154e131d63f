// Package seed derives the seeds of a run's random streams from its one
// configured seed (seeded mode), with the constants in one place.
//
// A purpose's tag is the ASCII of its name packed big-endian into a
// uint64 ("noise" = 0x6e6f697365). The values are fixed: seeded runs and
// their checkpoints repeat bit for bit only while the derivation does not
// change. The batch sampler and augmentations are keyed separately, by a
// 256-bit key (data.KeyFromSeed, data.NewSecretKey).
package seed

// Purpose tags one use of the run's seed.
type Purpose uint64

const (
	// Noise is the seeded noise source's seed: Derive(seed, Noise).
	Noise Purpose = 0x6e6f697365 // "noise"
	// ModelInit is the stream word of the PCG generator that draws the
	// initial weights: rand.NewPCG(seed, uint64(ModelInit)).
	ModelInit Purpose = 0x6d6f64656c // "model"
)

// Derive returns the seed of purpose p from the run's seed root: root XOR
// p's tag. Distinct tags keep the purposes' seeds distinct; the
// generators that take them mix their seed before use (SeededNoise with
// Mix64), so no structure of the XOR survives into the streams.
func Derive(root uint64, p Purpose) uint64 { return root ^ uint64(p) }

// Golden is 2^64/φ rounded to odd (0x9e3779b97f4a7c15), the increment of
// SplitMix64 (Steele, Lea and Flood 2014): consecutive multiples of it are
// spread evenly over the uint64s.
const Golden = 0x9e3779b97f4a7c15

// Mix64 is the SplitMix64 finaliser (Steele, Lea and Flood 2014, with the
// constants of Stafford's variant 13 that Vigna's reference code uses): a
// bijection on uint64 whose outputs for consecutive inputs are
// statistically unrelated. SplitMix64's i-th output from state s is
// Mix64(s + i·Golden), i ≥ 1.
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
