package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkGram compares the Gram matrix AᵀA (T×T) of a d×T patch matrix
// formed in float32 (SgemmSerial, as the ghost norm rule used to) with the
// float64 SYRK, including the conversion of A to float64, and with Gram64
// (conversion and product in one kernel, both triangles).
func BenchmarkGram(b *testing.B) {
	for _, s := range []struct{ t, d int }{{9, 576}, {49, 729}, {16, 4608}, {64, 2304}, {196, 256}, {65, 243}, {257, 128}} {
		r := rand.New(rand.NewPCG(1, 2))
		a := randSlice(r, s.d*s.t)
		b.Run(fmt.Sprintf("T%d-d%d/sgemm32", s.t, s.d), func(b *testing.B) {
			c := make([]float32, s.t*s.t)
			for b.Loop() {
				SgemmSerial(true, false, s.t, s.t, s.d, 1, a, s.t, a, s.t, 0, c, s.t)
			}
		})
		b.Run(fmt.Sprintf("T%d-d%d/dsyrk64", s.t, s.d), func(b *testing.B) {
			a64 := make([]float64, len(a))
			c := make([]float64, s.t*s.t)
			for b.Loop() {
				for i, v := range a {
					a64[i] = float64(v)
				}
				DsyrkSerial(true, s.t, s.d, 1, a64, s.t, 0, c, s.t)
			}
		})
		b.Run(fmt.Sprintf("T%d-d%d/dgemm64", s.t, s.d), func(b *testing.B) {
			a64 := make([]float64, len(a))
			c := make([]float64, s.t*s.t)
			for b.Loop() {
				for i, v := range a {
					a64[i] = float64(v)
				}
				DgemmSerial(true, false, s.t, s.t, s.d, 1, a64, s.t, a64, s.t, 0, c, s.t)
			}
		})
		b.Run(fmt.Sprintf("T%d-d%d/gram64", s.t, s.d), func(b *testing.B) {
			c := make([]float64, s.t*s.t)
			for b.Loop() {
				Gram64(c, s.t, a, s.d, s.t, s.t, nil)
			}
		})
		b.Run(fmt.Sprintf("T%d-d%d/convert", s.t, s.d), func(b *testing.B) {
			a64 := make([]float64, len(a))
			for b.Loop() {
				for i, v := range a {
					a64[i] = float64(v)
				}
			}
		})
	}
}

// BenchmarkGatherGram: the patch Gram from a pixel Gram (the ghost rule's
// pixel path) for scatternet-cnn's first layer (64 positions, 9 offsets)
// and a 16×16 ResNet/WRN layer (256 positions), the Go loop against
// GatherGram (its C kernel where there is one).
func BenchmarkGatherGram(b *testing.B) {
	for _, n := range []int{64, 256} {
		m := n + 1
		r := rand.New(rand.NewPCG(1, uint64(n)))
		p := make([]float64, m*m)
		for i := range p {
			p[i] = r.NormFloat64()
		}
		idx := make([]int32, 9*n)
		for i := range idx {
			idx[i] = int32(r.IntN(m))
		}
		dst := make([]float64, n*n)
		b.Run(fmt.Sprintf("T%d/go", n), func(b *testing.B) {
			for b.Loop() {
				gatherGramGo(dst, n, p, m, idx, 9, int32(n))
			}
		})
		b.Run(fmt.Sprintf("T%d/kernel", n), func(b *testing.B) {
			for b.Loop() {
				GatherGram(dst, n, p, m, idx, 9, int32(n))
			}
		})
	}
}
