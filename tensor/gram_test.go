package tensor

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestGram64WithinBound checks Gram64 (the C kernel where the CPU has
// AVX-512, else the Go path) and its Go reference against the exact Gram
// matrix (math/big): every entry within the documented bound
// γ⁶⁴_{rows+1}·Σ_r|x_ru·s_r||x_rv·s_r|, both triangles equal to the bit, the
// entries of dst past n in each row and x itself untouched.
func TestGram64WithinBound(t *testing.T) {
	for _, tc := range []struct {
		rows, n, ldx, ldd int
		scaled            bool
	}{
		{1, 1, 1, 1, false}, {3, 7, 9, 8, false}, {243, 65, 65, 66, false}, {128, 257, 260, 257, true},
		{64, 64, 70, 64, true}, {5, 16, 16, 20, false}, {17, 33, 40, 33, true}, {300, 17, 17, 17, false},
	} {
		t.Run(fmt.Sprintf("rows%d-n%d-scaled=%v", tc.rows, tc.n, tc.scaled), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(tc.rows), uint64(tc.n)))
			x := make([]float32, (tc.rows-1)*tc.ldx+tc.n)
			for i := range x {
				// wide exponents, so that cancellation and rounding are visible
				x[i] = float32(r.NormFloat64() * math.Exp2(float64(r.IntN(20)-10)))
			}
			var scale []float32
			if tc.scaled {
				scale = make([]float32, tc.rows)
				for i := range scale {
					scale[i] = float32(0.1 + r.Float64()*3)
				}
			}
			x0 := slices.Clone(x)
			exact, bound := gramExact(x, tc.rows, tc.n, tc.ldx, scale)
			for name, f := range map[string]func([]float64){
				"Gram64": func(d []float64) { Gram64(d, tc.ldd, x, tc.rows, tc.n, tc.ldx, scale) },
				"go":     func(d []float64) { gram64Go(d, tc.ldd, x, tc.rows, tc.n, tc.ldx, scale) },
			} {
				dst := make([]float64, (tc.n-1)*tc.ldd+tc.n+3)
				for i := range dst {
					dst[i] = -7
				}
				f(dst)
				for u := 0; u < tc.n; u++ {
					for v := 0; v < tc.n; v++ {
						got := dst[u*tc.ldd+v]
						if e := math.Abs(got - exact[u*tc.n+v]); !(e <= bound[u*tc.n+v]) {
							t.Fatalf("%s: [%d,%d] = %v, exact %v: error %g over the bound %g", name, u, v, got, exact[u*tc.n+v], e, bound[u*tc.n+v])
						}
						if got != dst[v*tc.ldd+u] {
							t.Fatalf("%s: [%d,%d] = %v but [%d,%d] = %v", name, u, v, got, v, u, dst[v*tc.ldd+u])
						}
					}
					end := min(len(dst), (u+1)*tc.ldd)
					for i := u*tc.ldd + tc.n; i < end; i++ {
						if dst[i] != -7 {
							t.Fatalf("%s: wrote dst[%d], past row %d's %d entries", name, i, u, tc.n)
						}
					}
				}
				if !slices.Equal(x, x0) {
					t.Fatalf("%s modified x", name)
				}
			}
		})
	}
}

// gramExact returns the exact Gram matrix (rounded once to float64) and
// the bound γ⁶⁴_{rows+1}·Σ_r|a_ru||a_rv| (a = x·s), the latter computed
// with a margin for its own rounding.
func gramExact(x []float32, rows, n, ldx int, scale []float32) (exact, bound []float64) {
	exact = make([]float64, n*n)
	bound = make([]float64, n*n)
	const u64 = 0x1p-53
	g := float64(rows+1) * u64 / (1 - float64(rows+1)*u64)
	for u := 0; u < n; u++ {
		for v := 0; v < n; v++ {
			sum := new(big.Float).SetPrec(400)
			var abs float64
			for r := 0; r < rows; r++ {
				s := 1.0
				if scale != nil {
					s = float64(scale[r])
				}
				au, av := float64(x[r*ldx+u])*s, float64(x[r*ldx+v])*s // exact
				p := new(big.Float).SetPrec(400).SetFloat64(au)
				p.Mul(p, new(big.Float).SetPrec(400).SetFloat64(av))
				sum.Add(sum, p)
				abs += math.Abs(au) * math.Abs(av)
			}
			exact[u*n+v], _ = sum.Float64()
			// the exact value rounded once, and abs computed in float64
			// (itself within γ_rows of its exact value, hence the factor 2)
			bound[u*n+v] = 2*g*abs + math.Abs(exact[u*n+v])*u64
		}
	}
	return exact, bound
}

// TestGatherGramMatchesGo: GatherGram (the C kernel where cgo has one) gives
// the Go loop's bits, rows with the skip index contribute nothing, the
// lower triangle is 0, and p and idx are untouched.
func TestGatherGramMatchesGo(t *testing.T) {
	for _, tc := range []struct{ n, m, kk int }{{1, 1, 1}, {9, 50, 9}, {64, 65, 9}, {256, 257, 9}, {49, 82, 25}, {7, 3, 1}} {
		r := rand.New(rand.NewPCG(uint64(tc.n), uint64(tc.m)))
		p := make([]float64, tc.m*tc.m)
		for i := range p {
			p[i] = r.NormFloat64() * math.Exp2(float64(r.IntN(40)-20))
		}
		skip := int32(tc.m - 1)
		idx := make([]int32, tc.kk*tc.n)
		for i := range idx {
			idx[i] = int32(r.IntN(tc.m))
		}
		p0, idx0 := slices.Clone(p), slices.Clone(idx)
		got := make([]float64, tc.n*tc.n)
		for i := range got {
			got[i] = math.NaN()
		}
		want := make([]float64, tc.n*tc.n)
		GatherGram(got, tc.n, p, tc.m, idx, tc.kk, skip)
		gatherGramGo(want, tc.n, p, tc.m, idx, tc.kk, skip)
		// the definition, for the skip rule and the triangle
		for s := 0; s < tc.n; s++ {
			for q := 0; q < tc.n; q++ {
				var d float64
				if q >= s {
					for κ := 0; κ < tc.kk; κ++ {
						if u := idx[κ*tc.n+s]; u != skip {
							d += p[int(u)*tc.m+int(idx[κ*tc.n+q])]
						}
					}
				}
				if math.Float64bits(got[s*tc.n+q]) != math.Float64bits(want[s*tc.n+q]) || want[s*tc.n+q] != d {
					t.Fatalf("n=%d m=%d kk=%d [%d,%d]: kernel %v, Go %v, definition %v", tc.n, tc.m, tc.kk, s, q, got[s*tc.n+q], want[s*tc.n+q], d)
				}
			}
		}
		if !slices.Equal(p, p0) || !slices.Equal(idx, idx0) {
			t.Fatal("GatherGram modified its inputs")
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an index outside p did not panic")
		}
	}()
	GatherGram(make([]float64, 4), 2, make([]float64, 4), 2, []int32{0, 2}, 1, 0)
}
