package seed

import "testing"

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
	// The derivation runs and checkpoints depend on: seed XOR tag.
	if got := Derive(7, Noise); got != 7^0x6e6f697365 {
		t.Errorf("Derive(7, Noise) = %#x", got)
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
