package seed

import (
	"math/big"
	"testing"
)

// tag packs a name's ASCII big-endian, as the Purpose doc says.
func tag(name string) uint64 {
	var v uint64
	for i := 0; i < len(name); i++ {
		v = v<<8 | uint64(name[i])
	}
	return v
}

func TestPurposeTags(t *testing.T) {
	for _, tc := range []struct {
		p    Purpose
		name string
	}{{Noise, "noise"}, {ModelInit, "model"}} {
		if uint64(tc.p) != tag(tc.name) {
			t.Errorf("%s: tag %#x, want %#x", tc.name, uint64(tc.p), tag(tc.name))
		}
	}
}

// TestValuesAreTodays pins the values seeded runs and their checkpoints
// were made with: train seeded the noise with c.Seed^0x6e6f697365 and nn
// the weights with rand.NewPCG(cfg.Seed, 0x6d6f64656c). Changing either
// changes every seeded run.
func TestValuesAreTodays(t *testing.T) {
	if uint64(ModelInit) != 0x6d6f64656c {
		t.Errorf("ModelInit = %#x, want 0x6d6f64656c", uint64(ModelInit))
	}
	for _, root := range []uint64{0, 1, 7, 42, 1 << 63, ^uint64(0)} {
		if got, want := Derive(root, Noise), root^0x6e6f697365; got != want {
			t.Errorf("Derive(%d, Noise) = %#x, want %#x", root, got, want)
		}
	}
	// Child is the per-call and per-chunk keying of the seeded noise.
	for _, tc := range []struct{ parent, i, salt uint64 }{{42, 0, Golden}, {42, 3, Golden}, {0, 1, 0x632be59bd9b4e019}, {^uint64(0), 9, 1}} {
		if got, want := Child(tc.parent, tc.i, tc.salt), Mix64(tc.parent^Mix64(tc.i+tc.salt)); got != want {
			t.Errorf("Child(%#x, %d, %#x) = %#x, want %#x", tc.parent, tc.i, tc.salt, got, want)
		}
	}
}

// TestGolden: Golden is ⌊2^64/φ⌋ (φ·Golden < 2^64 < φ·(Golden+1), in
// exact integer arithmetic) and odd.
func TestGolden(t *testing.T) {
	below := func(x uint64) bool {
		// x < 2^64/φ ⇔ φx < 2^64 ⇔ x(1+√5) < 2^65 ⇔ 5x² < (2^65 − x)².
		a := new(big.Int).SetUint64(x)
		lhs := new(big.Int).Mul(a, a)
		lhs.Mul(lhs, big.NewInt(5))
		r := new(big.Int).Lsh(big.NewInt(1), 65)
		r.Sub(r, a)
		r.Mul(r, r)
		return lhs.Cmp(r) < 0
	}
	if !below(Golden) || below(Golden+1) {
		t.Errorf("Golden %#x is not floor(2^64/phi)", uint64(Golden))
	}
	if Golden%2 != 1 {
		t.Error("Golden is even")
	}
}

// TestMix64IsSplitMix64: the first outputs of Vigna's splitmix64.c from
// state 0 and from state 1234567 (published reference values).
func TestMix64IsSplitMix64(t *testing.T) {
	for _, tc := range []struct {
		state uint64
		want  []uint64
	}{
		{0, []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f}},
		{1234567, []uint64{6457827717110365317, 3203168211198807973, 9817491932198370423}},
	} {
		for i, w := range tc.want {
			if got := Mix64(tc.state + uint64(i+1)*Golden); got != w {
				t.Errorf("state %d output %d: %#x, want %#x", tc.state, i, got, w)
			}
		}
	}
}
