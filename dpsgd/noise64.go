package dpsgd

// The float64 releases of both sources. They share the chunked streams and
// samplers of AddGaussian (noise.go, secure.go): only the element type of
// dst differs, and nothing is rounded to float32.

// AddGaussian64 sets every dst[i] to fl(dst[i] + std·Z_i) in float64, with
// the Z_i of call k of the seeded stream (the ones AddGaussian would draw
// as call k). It counts as one call, so MarshalBinary and UnmarshalBinary
// restore the stream exactly. Not hardened against floating-point attacks
// and not private against anyone who knows the seed (see SeededNoise).
func (s *SeededNoise) AddGaussian64(dst []float64, std float64) {
	s.add("SeededNoise.AddGaussian64", nil, dst, std)
}

// AddGaussian64 sets every dst[i] to y_i = g·round((dst[i] + std·Z_i)/g),
// g = 2^(⌊log2 std⌋ − 30), computed and returned in float64: every output is
// a multiple of g whatever the low bits of dst[i] (see SecureNoise, which
// also states the bound |dst[i]| ≤ 2^22·std on the float64 sum). Rounding y
// later (to float32, or y/N stored as float32) is post-processing.
func (s *SecureNoise) AddGaussian64(dst []float64, std float64) {
	s.add("SecureNoise.AddGaussian64", nil, dst, std)
}
