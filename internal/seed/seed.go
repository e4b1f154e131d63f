// Package seed derives the seeds of a run's random streams from its one
// configured seed (seeded mode), with the constants in one place.
//
// Every use of the run's seed, and where its constants are defined:
//
//   - the noise source: NewSeededNoise(Derive(seed, Noise)); inside it,
//     call k and chunk j get their generator's seed with Child (constants
//     in dpsgd/noise.go);
//   - the initial weights: rand.NewPCG(seed, uint64(ModelInit)) in
//     nn.NewModel;
//   - the batch sampler and the augmentations: a 256-bit key,
//     data.KeyFromSeed(seed) (SHA-256 of a domain string and the seed),
//     then one SHA-256 per stream (data/key.go); secure runs draw that key
//     from crypto/rand instead (data.NewSecretKey).
//
// A purpose's tag is the ASCII of its name packed big-endian into a
// uint64 ("noise" = 0x6e6f697365). The values are fixed: seeded runs and
// their checkpoints repeat bit for bit only while no derivation changes.
package seed

// Purpose tags one use of the run's seed.
type Purpose uint64

const (
	// Noise is the seeded noise source's seed: Derive(seed, Noise).
	Noise Purpose = 0x6e6f697365 // "noise"
	// ModelInit is the stream word of the PCG generator that draws the
	// initial weights: rand.NewPCG(seed, uint64(ModelInit)). It is used
	// as PCG's second seed word, not through Derive.
	ModelInit Purpose = 0x6d6f64656c // "model"
)

// Derive returns the seed of purpose p from the run's seed root: root XOR
// p's tag. Distinct tags keep the purposes' seeds distinct; the
// generators that take them mix their seed before use (SeededNoise with
// Mix64), so no structure of the XOR survives into the streams.
func Derive(root uint64, p Purpose) uint64 { return root ^ uint64(p) }

// Child returns the seed of child i of parent under salt:
// Mix64(parent ^ Mix64(i + salt)). Children of one parent with one salt
// are distinct for distinct i (Mix64 is a bijection), and unrelated to
// each other in their bits; the salt separates families of children of
// the same parent (say, calls and chunks).
func Child(parent, i, salt uint64) uint64 { return Mix64(parent ^ Mix64(i+salt)) }

// Golden is ⌊2^64/φ⌋ (φ the golden ratio), which is odd: SplitMix64's
// increment (Steele, Lea and Flood 2014). Consecutive multiples of it are
// spread evenly over the uint64s (the Weyl sequence with the slowest
// rational approximation).
const Golden = 0x9e3779b97f4a7c15

// Mix64 is the SplitMix64 finaliser (Steele, Lea and Flood 2014, with the
// multipliers and shifts of Stafford's "variant 13", as in Vigna's
// reference splitmix64.c): a bijection on uint64 whose outputs for
// consecutive inputs are statistically unrelated. SplitMix64's i-th
// output from state s is Mix64(s + i·Golden), i ≥ 1.
func Mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
