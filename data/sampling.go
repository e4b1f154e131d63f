package data

import (
	"fmt"
	"strings"
)

// Sampling names how logical batches are drawn: the values of the
// config's sampling key. The zero value is SamplingPoisson.
type Sampling int

const (
	// SamplingPoisson includes every example independently with a fixed
	// probability (PoissonSampler): the sampling DP-SGD's accountants
	// assume.
	SamplingPoisson Sampling = iota
	// SamplingShuffle takes fixed-size batches from a shuffled epoch
	// (ShuffleSampler): not covered by the Poisson accountants.
	SamplingShuffle
)

var samplingNames = [...]string{
	SamplingPoisson: "poisson",
	SamplingShuffle: "shuffle",
}

// Samplings lists the sampling names ParseSampling accepts, in Sampling
// order.
func Samplings() []string { return append([]string(nil), samplingNames[:]...) }

// ParseSampling returns the sampling named s (one of Samplings; "" is
// SamplingPoisson), or an error listing the names.
func ParseSampling(s string) (Sampling, error) {
	if s == "" {
		return SamplingPoisson, nil
	}
	for k, name := range samplingNames {
		if s == name {
			return Sampling(k), nil
		}
	}
	return 0, fmt.Errorf("want one of %s; got %q", strings.Join(samplingNames[:], ", "), s)
}

// String returns the sampling's name, as ParseSampling accepts it.
func (s Sampling) String() string {
	if s >= 0 && int(s) < len(samplingNames) {
		return samplingNames[s]
	}
	return fmt.Sprintf("Sampling(%d)", int(s))
}
