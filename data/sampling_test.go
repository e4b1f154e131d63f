package data

import "testing"

// TestParseSampling: every name round-trips through String, "" is the
// default (Poisson), and an unknown name lists the names.
func TestParseSampling(t *testing.T) {
	for _, name := range Samplings() {
		s, err := ParseSampling(name)
		if err != nil || s.String() != name {
			t.Errorf("ParseSampling(%q) = %v, %v", name, s, err)
		}
	}
	if s, err := ParseSampling(""); err != nil || s != SamplingPoisson {
		t.Errorf(`ParseSampling("") = %v, %v`, s, err)
	}
	if s, _ := ParseSampling("shuffle"); s != SamplingShuffle {
		t.Errorf("shuffle parsed as %v", s)
	}
	if _, err := ParseSampling("uniform"); err == nil || err.Error() != `want one of poisson, shuffle; got "uniform"` {
		t.Errorf("unknown sampling: %v", err)
	}
	if got := Sampling(7).String(); got != "Sampling(7)" {
		t.Errorf("Sampling(7).String() = %q", got)
	}
	var zero Sampling
	if zero != SamplingPoisson {
		t.Errorf("zero Sampling is %v, want poisson", zero)
	}
}
