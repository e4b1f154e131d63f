package gauss

import (
	"math"
	"testing"
)

// TestLogErfcTail: the asymptotic branch (x ≥ 20) agrees with log(erfc(x))
// where erfc is still representable (x ≤ 26), and LogCDF with log Φ.
func TestLogErfcTail(t *testing.T) {
	for x := -5.0; x <= 26; x += 0.125 {
		want := math.Log(math.Erfc(x))
		if got := LogErfc(x); math.Abs(got-want) > 1e-12*math.Abs(want)+1e-15 {
			t.Fatalf("LogErfc(%v) = %v, log(erfc) = %v", x, got, want)
		}
		z := -x * math.Sqrt2
		if got, want := LogCDF(z), math.Log(CDF(z)); math.Abs(got-want) > 1e-12*math.Abs(want)+1e-15 {
			t.Fatalf("LogCDF(%v) = %v, log Φ = %v", z, got, want)
		}
	}
	if got := LogErfc(40); !(got < -1600 && got > -1610) {
		t.Fatalf("LogErfc(40) = %v, want about -1605.4 (erfc underflows there)", got)
	}
}
