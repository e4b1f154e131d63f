package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"dptrain/internal/par"
)

func setThreads(t *testing.T, n int) {
	t.Helper()
	old := par.SetThreads(n)
	t.Cleanup(func() { par.SetThreads(old) })
}

func sameBits(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestSgemmSameBitsAtAnyThreadCount: products large enough for the parallel
// path (m·n·k ≥ 2¹⁸, split by rows or by columns, with and without
// transposes, β = 0 and β ≠ 0) give the same bits at 1, 2, 3 and 4 threads
// and on every repetition.
func TestSgemmSameBitsAtAnyThreadCount(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct{ m, n, k int }{{300, 70, 40}, {70, 300, 40}, {1000, 97, 33}, {33, 1000, 97}, {512, 512, 16}} {
		if int64(tc.m)*int64(tc.n)*int64(tc.k) < gemmParallelMin {
			t.Fatalf("%v does not take the parallel path", tc)
		}
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, beta := range []float32{0, 0.5} {
					t.Run(fmt.Sprintf("%dx%dx%d/ta=%v/tb=%v/beta=%v", tc.m, tc.n, tc.k, ta, tb, beta), func(t *testing.T) {
						a := randSlice(r, tc.m*tc.k)
						b := randSlice(r, tc.k*tc.n)
						c0 := randSlice(r, tc.m*tc.n)
						lda, ldb := tc.k, tc.n
						if ta {
							lda = tc.m
						}
						if tb {
							ldb = tc.k
						}
						run := func(threads int) []float32 {
							par.SetThreads(threads)
							c := append([]float32(nil), c0...)
							Sgemm(ta, tb, tc.m, tc.n, tc.k, 1, a, lda, b, ldb, beta, c, tc.n)
							return c
						}
						setThreads(t, 2)
						ref := run(2)
						for rep := 0; rep < 3; rep++ {
							if i := sameBits(ref, run(2)); i >= 0 {
								t.Fatalf("repetition %d: c[%d] differs", rep, i)
							}
						}
						for _, th := range []int{1, 3, 4} {
							if i := sameBits(ref, run(th)); i >= 0 {
								t.Fatalf("%d threads vs 2: c[%d] differs", th, i)
							}
						}
					})
				}
			}
		}
	}
}

// TestSgemmSerialIndependentOfAddresses: the same product with its operands
// at different addresses (offsets of 1–3 floats, so different alignments)
// gives the same bits. Layers rely on it: a chunk's matrices live in the
// scratch buffers of whichever worker takes the chunk.
func TestSgemmSerialIndependentOfAddresses(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct{ m, n, k int }{{64, 512, 576}, {9, 9, 576}, {49, 49, 729}, {16, 4608, 64}, {7, 5, 3}} {
		for _, tb := range []bool{false, true} {
			a := randSlice(r, tc.m*tc.k)
			b := randSlice(r, tc.k*tc.n)
			ldb := tc.n
			if tb {
				ldb = tc.k
			}
			ref := make([]float32, tc.m*tc.n)
			SgemmSerial(false, tb, tc.m, tc.n, tc.k, 1, a, tc.k, b, ldb, 0, ref, tc.n)
			for off := 1; off <= 3; off++ {
				a2 := append(make([]float32, off), a...)[off:]
				b2 := append(make([]float32, 4-off), b...)[4-off:]
				c2 := append(make([]float32, off), make([]float32, tc.m*tc.n)...)[off:]
				SgemmSerial(false, tb, tc.m, tc.n, tc.k, 1, a2, tc.k, b2, ldb, 0, c2, tc.n)
				if i := sameBits(ref, c2); i >= 0 {
					t.Fatalf("%v tb=%v offset %d: c[%d] = %g, at the other address %g", tc, tb, off, i, c2[i], ref[i])
				}
			}
		}
	}
}

func randSlice64(r *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = r.NormFloat64()
	}
	return s
}

// TestFloat64ProductsMatchNaive checks DgemmSerial and DsyrkSerial (upper
// triangle only; the lower one is left alone) against direct loops.
func TestFloat64ProductsMatchNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []struct{ m, n, k int }{{1, 1, 1}, {3, 5, 7}, {17, 33, 9}, {64, 31, 128}, {9, 9, 576}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				lda, ldb, ldc := tc.k+1, tc.n+2, tc.n+3
				arows, brows := tc.m, tc.k
				if ta {
					lda, arows = tc.m+1, tc.k
				}
				if tb {
					ldb, brows = tc.k+2, tc.n
				}
				a, b := randSlice64(r, arows*lda), randSlice64(r, brows*ldb)
				c := randSlice64(r, tc.m*ldc)
				want := append([]float64(nil), c...)
				for i := 0; i < tc.m; i++ {
					for j := 0; j < tc.n; j++ {
						var s float64
						for p := 0; p < tc.k; p++ {
							var av, bv float64
							if ta {
								av = a[p*lda+i]
							} else {
								av = a[i*lda+p]
							}
							if tb {
								bv = b[j*ldb+p]
							} else {
								bv = b[p*ldb+j]
							}
							s += av * bv
						}
						want[i*ldc+j] = 0.7*s + 0.3*want[i*ldc+j]
					}
				}
				DgemmSerial(ta, tb, tc.m, tc.n, tc.k, 0.7, a, lda, b, ldb, 0.3, c, ldc)
				for i := range c {
					if math.Abs(c[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
						t.Fatalf("Dgemm %v ta=%v tb=%v: c[%d] = %g, want %g", tc, ta, tb, i, c[i], want[i])
					}
				}
			}
		}
		for _, trans := range []bool{false, true} {
			n, k := tc.n, tc.k
			rows, cols := n, k
			if trans {
				rows, cols = k, n
			}
			lda, ldc := cols+1, n+2
			a := randSlice64(r, rows*lda)
			c := randSlice64(r, n*ldc)
			want := append([]float64(nil), c...)
			for i := 0; i < n; i++ {
				for j := i; j < n; j++ {
					var s float64
					for p := 0; p < k; p++ {
						if trans {
							s += a[p*lda+i] * a[p*lda+j]
						} else {
							s += a[i*lda+p] * a[j*lda+p]
						}
					}
					want[i*ldc+j] = 2*s + 0.5*want[i*ldc+j]
				}
			}
			DsyrkSerial(trans, n, k, 2, a, lda, 0.5, c, ldc)
			for i := range c {
				if math.Abs(c[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
					t.Fatalf("Dsyrk %v trans=%v: c[%d] = %g, want %g", tc, trans, i, c[i], want[i])
				}
			}
		}
	}
}

// TestSlots: the slots of a reduction partition the items in order and
// depend only on the item count; Reduce sums the slots in slot order (the same bits as a sequential left-to-right sum), at any thread
// count.
func TestSlots(t *testing.T) {
	for _, n := range []int{0, 1, 5, 16, 17, 100} {
		s := Slots(n)
		if s < 1 || s > MaxSlots || (n >= 1 && s > n) {
			t.Fatalf("Slots(%d) = %d", n, s)
		}
		next := 0
		for i := 0; i < s; i++ {
			lo, hi := SlotRange(n, s, i)
			if lo != next || hi < lo || (n >= s && hi == lo) {
				t.Fatalf("n=%d: slot %d = [%d,%d) after %d", n, i, lo, hi, next)
			}
			next = hi
		}
		if next != n {
			t.Fatalf("n=%d: slots end at %d", n, next)
		}
	}
	r := rand.New(rand.NewPCG(11, 12))
	const slots, size = 7, 40000
	parts := make([][]float32, slots)
	for i := range parts {
		parts[i] = randSlice(r, size)
	}
	want := make([]float32, size)
	dst0 := randSlice(r, size)
	for i := range want {
		s := parts[0][i]
		for _, p := range parts[1:] {
			s += p[i]
		}
		want[i] = dst0[i] + s
	}
	for _, th := range []int{1, 2, 3} {
		setThreads(t, th)
		b := AcquireSlots(slots, size)
		for i := range parts {
			copy(b.Slot(i), parts[i])
		}
		dst := append([]float32(nil), dst0...)
		for i, v := range b.Reduce()[:size] {
			dst[i] += v
		}
		b.Release()
		if i := sameBits(want, dst); i >= 0 {
			t.Fatalf("%d threads: element %d = %g, want %g", th, i, dst[i], want[i])
		}
	}
	// Warm buffers are reused: no allocation once the pool holds them.
	if a := testing.AllocsPerRun(10, func() { AcquireSlots(slots, size).Release() }); a != 0 {
		t.Errorf("AcquireSlots allocates %v times per call when warm", a)
	}
}
