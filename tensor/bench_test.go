package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkSgemm reports GFLOP/s of C = A·B on square and conv-shaped
// problems (m = Cout, n = H·W, k = Cin·9 for 3×3 convolutions at CIFAR and
// ImageNet resolutions), single-threaded (SgemmSerial) and parallel.
func BenchmarkSgemm(b *testing.B) {
	for _, s := range []struct {
		name    string
		m, n, k int
	}{
		{"square-512", 512, 512, 512},
		{"square-1024", 1024, 1024, 1024},
		{"conv64-32x32", 64, 1024, 576},
		{"conv128-16x16", 128, 256, 1152},
		{"conv256-8x8", 256, 64, 2304},
		{"conv512-4x4", 512, 16, 4608},
		{"conv64-56x56", 64, 3136, 576},
		{"conv512-7x7", 512, 49, 4608},
	} {
		for _, serial := range []bool{true, false} {
			b.Run(fmt.Sprintf("%s/serial=%v", s.name, serial), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 2))
				a, bb, c := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n), make([]float32, s.m*s.n)
				f := Sgemm
				if serial {
					f = SgemmSerial
				}
				f(false, false, s.m, s.n, s.k, 1, a, s.k, bb, s.n, 0, c, s.n)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					f(false, false, s.m, s.n, s.k, 1, a, s.k, bb, s.n, 0, c, s.n)
				}
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
