package float16

import (
	"math"
	"math/rand/v2"
	"testing"
)

// value is binary16 h's value from the definition, in float64.
func value(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	e, m := int(h>>10)&0x1f, float64(h&0x3ff)
	switch e {
	case 0x1f:
		if m != 0 {
			return math.NaN()
		}
		return s * math.Inf(1)
	case 0:
		return s * m * math.Ldexp(1, -24)
	}
	return s * (1 + m/1024) * math.Ldexp(1, e-15)
}

// TestToFloat32AllValues: every one of the 65,536 bit patterns against the
// definition; signed zeros keep their sign; NaNs stay NaN with their sign.
func TestToFloat32AllValues(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got, want := ToFloat32(h), value(h)
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) || math.Signbit(float64(got)) != (h&0x8000 != 0) {
				t.Fatalf("%#04x: %v, want a NaN of the same sign", h, got)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != (h&0x8000 != 0) {
			t.Fatalf("%#04x: %v, want %v", h, got, want)
		}
		if back := FromFloat32(got); back != h {
			t.Fatalf("%#04x: round trip gives %#04x", h, back)
		}
	}
}

// TestFromFloat32RoundsToNearestEven: for random and edge float32s the
// result is a nearest binary16 (checked against its neighbours), ties to
// the even one, and overflow is ±Inf.
func TestFromFloat32RoundsToNearestEven(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	fs := []float32{0, 65504, 65519.99, 65520, 1e-8, 2.9e-8, 3e-8, 6e-8, 5.9604645e-08, 2.980232e-08, 1.0009765625 / 2, 1 + 1.0/2048, 1 + 3.0/2048}
	for range 200_000 {
		fs = append(fs, math.Float32frombits(r.Uint32()))
	}
	for _, f := range fs {
		for _, f := range []float32{f, -f} {
			h := FromFloat32(f)
			x := float64(f)
			if math.IsNaN(x) {
				if h&0x7fff != 0x7e00 {
					t.Fatalf("NaN → %#04x", h)
				}
				continue
			}
			if math.Abs(x) >= 65520 {
				if h&0x7fff != 0x7c00 {
					t.Fatalf("%v → %#04x, want Inf", f, h)
				}
				continue
			}
			d := math.Abs(value(h) - x)
			for _, nb := range []uint16{h - 1, h + 1} {
				if nb&0x7c00 == 0x7c00 || (nb^h)&0x8000 != 0 {
					continue
				}
				dn := math.Abs(value(nb) - x)
				if dn < d || (dn == d && h&1 == 1) {
					t.Fatalf("%v → %#04x (%v), but %#04x (%v) is nearer or the even tie", f, h, value(h), nb, value(nb))
				}
			}
		}
	}
}

func TestHalfConversion(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := ToFloat32(uint16(h))
		if f != f { // NaN
			if back := FromFloat32(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x → %#04x", h, back)
			}
			continue
		}
		if back := FromFloat32(f); back != uint16(h) {
			t.Fatalf("%#04x → %g → %#04x", h, f, back)
		}
	}
	for _, tc := range []struct {
		f    float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {1e10, 0x7c00},
		{float32(math.Ldexp(1, -24)), 0x0001}, {float32(math.Ldexp(1, -25)), 0x0000},
		{float32(math.Ldexp(1.5, -25)), 0x0001}, {float32(math.Ldexp(3, -25)), 0x0002},
		{1 + float32(math.Ldexp(1, -11)), 0x3c00}, {1 + float32(math.Ldexp(3, -11)), 0x3c02},
		{float32(math.Inf(-1)), 0xfc00},
	} {
		if got := FromFloat32(tc.f); got != tc.want {
			t.Errorf("FromFloat32(%g) = %#04x, want %#04x", tc.f, got, tc.want)
		}
	}
	r := rand.New(rand.NewPCG(13, 14))
	for i := 0; i < 100000; i++ {
		f := float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(40)-30)))
		h := FromFloat32(f)
		g := ToFloat32(h)
		// g must be a nearest half: its neighbours are no closer.
		for _, nb := range []uint16{h - 1, h + 1} {
			if nb&0x7c00 == 0x7c00 || (h&0x7fff) == 0 {
				continue
			}
			if n := ToFloat32(nb); math.Abs(float64(n-f)) < math.Abs(float64(g-f)) {
				t.Fatalf("%g rounded to %g, but %g is closer", f, g, n)
			}
		}
	}
}
