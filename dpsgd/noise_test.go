package dpsgd

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"dptrain/internal/par"
)

// zCrit is the two-sided critical value of a standard normal test with
// false-alarm probability 1e-6: P(|Z| > 4.8916) = 1e-6.
const zCrit = 4.8916

// ksCrit is the critical value of √N·D_N (Kolmogorov–Smirnov) with
// false-alarm probability about 1e-6: P(K > t) ≈ 2·exp(−2t²) = 1e-6 at
// t = 2.6935 (the first term of the Kolmogorov series; the rest is < 1e-20).
const ksCrit = 2.6935

func normCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// normalStats checks that z holds i.i.d. standard normal samples: mean and
// variance z-tests, the two-sided 3σ tail frequency, lag-1 correlation and
// a Kolmogorov–Smirnov test against Φ. Each test has a false-alarm
// probability of 1e-6 (1e-6 for the KS test too), so for a correct sampler
// the whole check fails with probability below 5e-6.
func normalStats(t *testing.T, name string, z []float64) {
	t.Helper()
	n := float64(len(z))
	var sum, sumSq, lag float64
	tail := 0
	for i, v := range z {
		sum += v
		sumSq += v * v
		if math.Abs(v) > 3 {
			tail++
		}
		if i > 0 {
			lag += v * z[i-1]
		}
	}
	mean := sum / n
	variance := sumSq/n - mean*mean
	// mean of N standard normals has sd 1/√N.
	if zm := mean * math.Sqrt(n); math.Abs(zm) > zCrit {
		t.Errorf("%s: mean %.3g, z = %.2f (critical %.2f)", name, mean, zm, zCrit)
	}
	// sample variance has sd √(2/N) for normal data.
	if zv := (variance - 1) / math.Sqrt(2/n); math.Abs(zv) > zCrit {
		t.Errorf("%s: variance %.6f, z = %.2f (critical %.2f)", name, variance, zv, zCrit)
	}
	// P(|Z| > 3) = erfc(3/√2); the count is binomial.
	p3 := math.Erfc(3 / math.Sqrt2)
	if zt := (float64(tail) - n*p3) / math.Sqrt(n*p3*(1-p3)); math.Abs(zt) > zCrit {
		t.Errorf("%s: %d samples beyond 3σ, want about %.0f (z = %.2f)", name, tail, n*p3, zt)
	}
	// lag-1 products of independent standard normals have mean 0, sd 1.
	if zl := lag / math.Sqrt(n-1); math.Abs(zl) > zCrit {
		t.Errorf("%s: lag-1 correlation z = %.2f (critical %.2f)", name, zl, zCrit)
	}
	s := slices.Clone(z)
	slices.Sort(s)
	d := 0.0
	for i, v := range s {
		f := normCDF(v)
		d = max(d, float64(i+1)/n-f, f-float64(i)/n)
	}
	if k := d * math.Sqrt(n); k > ksCrit {
		t.Errorf("%s: Kolmogorov–Smirnov √N·D = %.3f > %.3f", name, k, ksCrit)
	}
}

func TestNoiseStatistics(t *testing.T) {
	const n = 1 << 20 // 16 chunks: the test also covers the chunk streams
	for _, tc := range []struct {
		name string
		src  NoiseSource
		base float32 // value the noise is added to
		std  float64
	}{
		{"seeded/zero", NewSeededNoise(1), 0, 1},
		{"seeded/offset", NewSeededNoise(2), 3.25, 2.5},
		{"seeded/small", NewSeededNoise(3), -0.5, 1e-3},
		{"secure/zero", NewSecureNoise(), 0, 1},
		{"secure/offset", NewSecureNoise(), 3.25, 2.5},
		{"secure/small", NewSecureNoise(), -0.5, 1e-3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]float32, n)
			for i := range dst {
				dst[i] = tc.base
			}
			tc.src.AddGaussian(dst, tc.std)
			z := make([]float64, n)
			for i, v := range dst {
				z[i] = (float64(v) - float64(tc.base)) / tc.std
			}
			normalStats(t, tc.name, z)
		})
	}
}

// TestNoiseCallsIndependent checks that consecutive calls (and sources with
// different seeds) do not repeat or correlate: the correlation of two
// independent standard normal vectors times √N is standard normal.
func TestNoiseCallsIndependent(t *testing.T) {
	const n = 1 << 18
	corr := func(a, b []float32) float64 {
		s := 0.0
		for i := range a {
			s += float64(a[i]) * float64(b[i])
		}
		return s / math.Sqrt(float64(len(a)))
	}
	for _, mk := range []func() NoiseSource{
		func() NoiseSource { return NewSeededNoise(7) },
		func() NoiseSource { return NewSecureNoise() },
	} {
		src := mk()
		a, b := make([]float32, n), make([]float32, n)
		src.AddGaussian(a, 1)
		src.AddGaussian(b, 1)
		if c := corr(a, b); math.Abs(c) > zCrit {
			t.Errorf("%s: consecutive calls correlate: z = %.2f", src.Mode(), c)
		}
		// Chunk 0 against chunk 1 of one call.
		if c := corr(a[:noiseChunk], a[noiseChunk:2*noiseChunk]); math.Abs(c) > zCrit {
			t.Errorf("%s: chunks 0 and 1 correlate: z = %.2f", src.Mode(), c)
		}
	}
	a, b := make([]float32, n), make([]float32, n)
	NewSeededNoise(1).AddGaussian(a, 1)
	NewSeededNoise(2).AddGaussian(b, 1)
	if c := corr(a, b); math.Abs(c) > zCrit {
		t.Errorf("seeds 1 and 2 correlate: z = %.2f", c)
	}
}

func TestSeededReproducible(t *testing.T) {
	const n = 3*noiseChunk + 123
	draw := func(threads int, seed uint64) []float32 {
		old := par.SetThreads(threads)
		defer par.SetThreads(old)
		s := NewSeededNoise(seed)
		out := make([]float32, 0, 3*n)
		for range 3 {
			d := make([]float32, n)
			s.AddGaussian(d, 1.5)
			out = append(out, d...)
		}
		return out
	}
	ref := draw(1, 42)
	for _, th := range []int{2, 3, 8} {
		if got := draw(th, 42); !slices.Equal(got, ref) {
			t.Errorf("threads %d: noise differs from the 1-thread stream", th)
		}
	}
	if slices.Equal(draw(1, 43), ref) {
		t.Error("seeds 42 and 43 gave the same noise")
	}
}

func TestSeededSaveRestore(t *testing.T) {
	sizes := []int{10, noiseChunk + 5, 1}
	// Uninterrupted run: five calls.
	a := NewSeededNoise(99)
	var want [][]float32
	for i := range 5 {
		d := make([]float32, sizes[i%len(sizes)])
		a.AddGaussian(d, 1)
		want = append(want, d)
	}
	// Interrupted after two calls, restored into a fresh source.
	b := NewSeededNoise(99)
	for i := range 2 {
		b.AddGaussian(make([]float32, sizes[i%len(sizes)]), 1)
	}
	state, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c, err := RestoreNoise(state)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode() != ModeSeeded {
		t.Fatalf("restored mode %q", c.Mode())
	}
	for i := 2; i < 5; i++ {
		d := make([]float32, sizes[i%len(sizes)])
		c.AddGaussian(d, 1)
		if !slices.Equal(d, want[i]) {
			t.Fatalf("call %d after restore differs from the uninterrupted run", i)
		}
	}
}

func TestNoiseStateErrors(t *testing.T) {
	seededState, _ := NewSeededNoise(1).MarshalBinary()
	secureState, _ := NewSecureNoise().MarshalBinary()
	for _, tc := range []struct {
		name string
		dst  NoiseSource
		data []byte
		want string
	}{
		{"secure-into-seeded", NewSeededNoise(0), secureState, "saved by a secure source"},
		{"seeded-into-secure", NewSecureNoise(), seededState, "saved by a seeded source"},
		{"truncated", NewSeededNoise(0), seededState[:len(seededState)-1], "want 38 bytes"},
		{"garbage", NewSecureNoise(), []byte("hello"), "want 30 bytes"},
	} {
		err := tc.dst.UnmarshalBinary(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := RestoreNoise([]byte("nope")); err == nil {
		t.Error("RestoreNoise accepted garbage")
	}
	s, err := RestoreNoise(secureState)
	if err != nil || s.Mode() != ModeSecure {
		t.Errorf("RestoreNoise(secure state) = %v, %v", s, err)
	}
	if _, err := NewNoise("fast", 1); err == nil || !strings.Contains(err.Error(), "noise mode") {
		t.Errorf("NewNoise(fast): error %v", err)
	}
}

func TestNoiseStdZeroAndPanics(t *testing.T) {
	for _, src := range []NoiseSource{NewSeededNoise(1), NewSecureNoise()} {
		d := []float32{1, 2, 3}
		src.AddGaussian(d, 0)
		if !slices.Equal(d, []float32{1, 2, 3}) {
			t.Errorf("%s: std 0 changed dst to %v", src.Mode(), d)
		}
		for _, bad := range []float64{-1, math.NaN(), math.Inf(1)} {
			func() {
				defer func() {
					if _, ok := recover().(*UsageError); !ok {
						t.Errorf("%s: std %v did not panic with *UsageError", src.Mode(), bad)
					}
				}()
				src.AddGaussian(d, bad)
			}()
		}
	}
}

// TestSecureGrid checks the hardening property: every output is a multiple
// of the grid g whatever the low bits of the input, so the set of possible
// outputs does not depend on them; inputs that differ below g give output
// distributions that are mean-shifted by the difference, not distinguishable
// by their bits.
func TestSecureGrid(t *testing.T) {
	s := NewSecureNoise()
	for _, std := range []float64{1, 2.5, 1e-3, 4096} {
		g := s.Grid(std)
		if r := std / g; r < 0x1p30 || r >= 0x1p31 {
			t.Errorf("std %g: grid %g is std/%g, want within [2^30, 2^31)", std, g, r)
		}
		d := make([]float32, 1<<14)
		for i := range d {
			// Inputs with low bits set far below g, and exact zeros.
			d[i] = float32(i%7-3) * float32(math.Nextafter32(1, 2)-1) * float32(std)
		}
		s.AddGaussian(d, std)
		for i, v := range d {
			if q := float64(v) / g; q != math.Trunc(q) {
				t.Fatalf("std %g: output %d = %g is not a multiple of the grid %g", std, i, v, g)
			}
		}
	}
	// Two secure sources never repeat each other.
	a, b := make([]float32, 64), make([]float32, 64)
	NewSecureNoise().AddGaussian(a, 1)
	NewSecureNoise().AddGaussian(b, 1)
	if slices.Equal(a, b) {
		t.Error("two secure sources gave identical noise")
	}
}

func TestNoiseAllocs(t *testing.T) {
	d := make([]float32, 4*noiseChunk)
	for _, src := range []NoiseSource{NewSeededNoise(1), NewSecureNoise()} {
		src.AddGaussian(d, 1) // first call may allocate (pool, buffers)
		if a := testing.AllocsPerRun(5, func() { src.AddGaussian(d, 1) }); a != 0 {
			t.Errorf("%s: %v allocations per AddGaussian", src.Mode(), a)
		}
	}
	st, _ := NewSeededNoise(1).MarshalBinary()
	if !bytes.HasPrefix(st, []byte("dpsgd.noise.seeded")) {
		t.Errorf("seeded state header %q", st)
	}
}

// resnet18Params is the parameter count of ResNet-18 (11,689,512).
const resnet18Params = 11_689_512

// BenchmarkNoise adds noise to 11.7M elements (one ResNet-18 gradient),
// with all threads and with one.
func BenchmarkNoise(b *testing.B) {
	d := make([]float32, resnet18Params)
	for _, mode := range []NoiseMode{ModeSeeded, ModeSecure} {
		for _, th := range []int{par.Threads(), 1} {
			b.Run(string(mode)+"/threads="+strconv.Itoa(th), func(b *testing.B) {
				old := par.SetThreads(th)
				defer par.SetThreads(old)
				src, _ := NewNoise(mode, 1)
				src.AddGaussian(d, 1)
				b.SetBytes(4 * resnet18Params)
				b.ResetTimer()
				for range b.N {
					src.AddGaussian(d, 1)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/resnet18Params, "ns/elem")
			})
		}
	}
}

// TestNoise64Statistics: AddGaussian64 of both sources adds standard-normal
// noise times std, on inputs with low bits set far below the secure grid.
func TestNoise64Statistics(t *testing.T) {
	const n = 1 << 20 // 16 chunks
	for _, tc := range []struct {
		name string
		src  NoiseSource
		base float64 // value the noise is added to
		std  float64
	}{
		{"seeded/zero", NewSeededNoise(1), 0, 1},
		{"seeded/offset", NewSeededNoise(2), 1.2 + 0x1p-40, 24},
		{"seeded/small", NewSeededNoise(3), -0.5, 1e-3},
		{"secure/zero", NewSecureNoise(), 0, 1},
		{"secure/offset", NewSecureNoise(), 1.2 + 0x1p-40, 24},
		{"secure/small", NewSecureNoise(), -0.5, 1e-3},
		{"secure/large", NewSecureNoise(), 3e5, 2.5}, // |x| ≈ 2^17·std
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]float64, n)
			for i := range dst {
				dst[i] = tc.base
			}
			tc.src.AddGaussian64(dst, tc.std)
			z := make([]float64, n)
			for i, v := range dst {
				z[i] = (v - tc.base) / tc.std
			}
			normalStats(t, tc.name, z)
		})
	}
}

// TestSecureGrid64: every AddGaussian64 output of the secure source is a
// multiple of g, whatever the low bits of the float64 input, also for an
// input beyond the 2^22·std bound; and nothing is rounded to float32 (a
// float32 output would be a multiple of 2^(e−24) for its binade e, which
// an output on the finer grid g is with probability about 2^-6 at most).
func TestSecureGrid64(t *testing.T) {
	s := NewSecureNoise()
	for _, tc := range []struct {
		std, base float64
	}{{1, 0}, {24, 1.2}, {24, 50}, {1e-3, -0.5}, {4096, 1e6}, {1, 0x1p24}} {
		g := s.Grid(tc.std)
		d := make([]float64, 1<<14)
		for i := range d {
			// Inputs with low bits set far below g, and exact zeros.
			d[i] = tc.base + float64(i%7-3)*0x1p-50*math.Max(1, math.Abs(tc.base))
		}
		s.AddGaussian64(d, tc.std)
		notF32 := 0
		for i, v := range d {
			if q := v / g; q != math.Trunc(q) {
				t.Fatalf("std %g, base %g: output %d = %g is not a multiple of the grid %g", tc.std, tc.base, i, v, g)
			}
			if float64(float32(v)) != v {
				notF32++
			}
		}
		// Below the bound the outputs are on g, 2^30 times finer than std,
		// so almost none is a float32; beyond it they are on the coarser
		// float64 spacing of the sum (the caveat in SecureNoise).
		if math.Abs(tc.base) <= 0x1p22*tc.std && notF32 < len(d)/2 {
			t.Errorf("std %g, base %g: only %d of %d outputs are not float32 values: rounded to float32?", tc.std, tc.base, notF32, len(d))
		}
	}
}

// TestNoise64MatchesFloat32: for the same variates, AddGaussian64 is
// AddGaussian without the final float32 rounding. Seeded: call k of either
// method draws the same Z. Secure: the chunk sampler run on fixed keys.
func TestNoise64MatchesFloat32(t *testing.T) {
	const n = 2*noiseChunk + 77
	in32 := make([]float32, n)
	for i := range in32 {
		in32[i] = float32(i%13)*0.37 - 2
	}
	check := func(name string, got64 []float64, got32 []float32) {
		t.Helper()
		same := 0
		for i := range got32 {
			if float32(got64[i]) != got32[i] {
				t.Fatalf("%s: element %d: float32(%v) != %v", name, i, got64[i], got32[i])
			}
			if got64[i] == float64(got32[i]) {
				same++
			}
		}
		if same > n/2 {
			t.Errorf("%s: %d of %d float64 outputs are float32 values", name, same, n)
		}
	}
	for _, std := range []float64{1, 24, 1e-3} {
		a, b := NewSeededNoise(8), NewSeededNoise(8)
		a.AddGaussian(make([]float32, 5), 1) // call 0 of both streams
		b.AddGaussian64(make([]float64, 5), 1)
		d32 := slices.Clone(in32)
		a.AddGaussian(d32, std)
		d64 := make([]float64, n)
		for i, v := range in32 {
			d64[i] = float64(v)
		}
		b.AddGaussian64(d64, std)
		check("seeded/std="+strconv.FormatFloat(std, 'g', -1, 64), d64, d32)

		s := NewSecureNoise()
		g := s.Grid(std)
		keys := make([]byte, 32*3)
		for i := range keys {
			keys[i] = byte(i*31 + 7)
		}
		var w par.Worker
		d32 = slices.Clone(in32)
		j32 := secureJob{dst: d32, n: n, std: std, g: g, invG: 1 / g, keys: keys}
		j32.Run(0, 3, &w)
		for i, v := range in32 {
			d64[i] = float64(v)
		}
		j64 := secureJob{dst64: d64, n: n, std: std, g: g, invG: 1 / g, keys: keys}
		j64.Run(0, 3, &w)
		check("secure/std="+strconv.FormatFloat(std, 'g', -1, 64), d64, d32)
	}
}

// TestSeeded64Reproducible: AddGaussian64 is deterministic in the seed and
// the call sequence at any thread count, counts as one call, and resumes
// exactly after MarshalBinary / RestoreNoise, with float32 and float64
// calls interleaved.
func TestSeeded64Reproducible(t *testing.T) {
	sizes := []int{10, 2*noiseChunk + 5, 1, noiseChunk}
	// draw runs 6 calls alternating AddGaussian64 and AddGaussian, saving
	// and restoring the source before call `restoreAt` (−1: never).
	draw := func(threads int, seed uint64, restoreAt int) [][]float64 {
		old := par.SetThreads(threads)
		defer par.SetThreads(old)
		var src NoiseSource = NewSeededNoise(seed)
		var out [][]float64
		for i := range 6 {
			if i == restoreAt {
				st, err := src.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if src, err = RestoreNoise(st); err != nil {
					t.Fatal(err)
				}
			}
			n := sizes[i%len(sizes)]
			d := make([]float64, n)
			for k := range d {
				d[k] = 0.25 * float64(k%5)
			}
			if i%2 == 0 {
				src.AddGaussian64(d, 1.5)
			} else {
				d32 := make([]float32, n)
				for k := range d32 {
					d32[k] = float32(d[k])
				}
				src.AddGaussian(d32, 1.5)
				for k, v := range d32 {
					d[k] = float64(v)
				}
			}
			out = append(out, d)
		}
		if c := src.(*SeededNoise).Calls(); c != 6 {
			t.Errorf("Calls() = %d after 6 calls", c)
		}
		return out
	}
	equal := func(a, b [][]float64) bool { return slices.EqualFunc(a, b, slices.Equal) }
	ref := draw(1, 42, -1)
	for _, tc := range []struct{ threads, restoreAt int }{{2, -1}, {3, -1}, {8, -1}, {1, 2}, {2, 3}, {8, 5}} {
		if got := draw(tc.threads, 42, tc.restoreAt); !equal(got, ref) {
			t.Errorf("threads %d, restored before call %d: noise differs from the 1-thread uninterrupted stream", tc.threads, tc.restoreAt)
		}
	}
	if equal(draw(1, 43, -1), ref) {
		t.Error("seeds 42 and 43 gave the same noise")
	}
	// Consecutive float64 calls do not repeat.
	s := NewSeededNoise(42)
	a, b := make([]float64, 64), make([]float64, 64)
	s.AddGaussian64(a, 1)
	s.AddGaussian64(b, 1)
	if slices.Equal(a, b) {
		t.Error("two AddGaussian64 calls gave identical noise")
	}
}

func TestNoise64StdZeroPanicsAllocs(t *testing.T) {
	for _, src := range []NoiseSource{NewSeededNoise(1), NewSecureNoise()} {
		st0, _ := src.MarshalBinary()
		d := []float64{1 + 0x1p-50, 2, 3}
		src.AddGaussian64(d, 0)
		if !slices.Equal(d, []float64{1 + 0x1p-50, 2, 3}) {
			t.Errorf("%s: std 0 changed dst to %v", src.Mode(), d)
		}
		if st1, _ := src.MarshalBinary(); bytes.Equal(st0, st1) {
			t.Errorf("%s: a std-0 AddGaussian64 call was not counted", src.Mode())
		}
		for _, bad := range []float64{-1, math.NaN(), math.Inf(1)} {
			func() {
				defer func() {
					e, ok := recover().(*UsageError)
					if !ok || !strings.Contains(e.Op, "AddGaussian64") {
						t.Errorf("%s: std %v: panic %v, want a *UsageError of AddGaussian64", src.Mode(), bad, e)
					}
				}()
				src.AddGaussian64(d, bad)
			}()
		}
		big := make([]float64, 4*noiseChunk)
		src.AddGaussian64(big, 1) // first call may allocate (pool, buffers)
		if a := testing.AllocsPerRun(5, func() { src.AddGaussian64(big, 1) }); a != 0 {
			t.Errorf("%s: %v allocations per AddGaussian64", src.Mode(), a)
		}
	}
}
