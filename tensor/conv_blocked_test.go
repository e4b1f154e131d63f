package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestConvPlanBlockedWeightGrad: where oneDNN's backward-weights layout is
// row-blocked, BackwardWeightsBlocked gives BackwardWeights' values (the
// same bits) in that layout, with zero padding; BlockWeightGrad and
// UnblockWeightGrad are exact inverse copies; and every element of a block
// belongs to its lane's row (each plain weight lands in the chunk of its
// row's block at a position ≡ o mod Block).
func TestConvPlanBlockedWeightGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	shapes := []ConvShape{
		{N: 1, Cin: 3, H: 9, W: 9, Cout: 16, K: 3, Stride: 1, Pad: 1},
		{N: 1, Cin: 16, H: 8, W: 8, Cout: 32, K: 3, Stride: 1, Pad: 1},
		{N: 2, Cin: 24, H: 7, W: 7, Cout: 40, K: 3, Stride: 2, Pad: 1},
		{N: 1, Cin: 32, H: 8, W: 8, Cout: 64, K: 1, Stride: 2, Pad: 0},
		{N: 1, Cin: 5, H: 6, W: 6, Cout: 7, K: 3, Stride: 1, Pad: 1},
	}
	blockedSeen := false
	for _, s := range shapes {
		p, err := NewConvPlan(s)
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		if p == nil {
			t.Skip("no convolution kernels in this build")
		}
		l, ok := p.WeightGradLayout()
		if !ok {
			t.Logf("%+v: weight-gradient layout not row-blocked (%s)", s, p.Impl())
			continue
		}
		blockedSeen = true
		nb := (s.Cout + l.Block - 1) / l.Block
		if l.Rows != s.Cout || l.Len != nb*l.Chunk || l.Chunk%l.Block != 0 || l.Chunk < s.Cin*s.K*s.K*l.Block {
			t.Fatalf("%+v: layout %+v inconsistent with the shape", s, l)
		}
		oh, ow := s.Out()
		x, dy := randSlice(r, s.N*s.Cin*s.H*s.W), randSlice(r, s.N*s.Cout*oh*ow)
		d := s.Cin * s.K * s.K
		plain := make([]float32, s.Cout*d)
		p.BackwardWeights(plain, x, dy)
		blk := make([]float32, l.Len)
		for i := range blk {
			blk[i] = float32(math.NaN())
		}
		p.BackwardWeightsBlocked(blk, x, dy)
		back := make([]float32, len(plain))
		p.UnblockWeightGrad(back, blk)
		for i := range plain {
			if math.Float32bits(back[i]) != math.Float32bits(plain[i]) {
				t.Fatalf("%+v: element %d: blocked then reordered %v, plain %v", s, i, back[i], plain[i])
			}
		}
		// Where each weight goes: an array holding o+1 in row o.
		rows := make([]float32, s.Cout*d)
		for o := 0; o < s.Cout; o++ {
			for i := 0; i < d; i++ {
				rows[o*d+i] = float32(o + 1)
			}
		}
		rb := make([]float32, l.Len)
		for i := range rb {
			rb[i] = float32(math.NaN())
		}
		p.BlockWeightGrad(rb, rows)
		count := make([]int, s.Cout)
		var nonzero int
		for e, v := range rb {
			if v == 0 {
				continue
			}
			o := int(v) - 1
			if v != float32(o+1) || o < 0 || o >= s.Cout || e/l.Chunk != o/l.Block || e%l.Block != o%l.Block {
				t.Fatalf("%+v: blocked element %d holds %v: not row %d's lane of block %d", s, e, v, o, e/l.Chunk)
			}
			count[o]++
			nonzero++
		}
		for o, n := range count {
			if n != d {
				t.Fatalf("%+v: row %d has %d elements in the blocked layout, want %d", s, o, n, d)
			}
		}
		// The backward-weights output's padding is zero too (the blocked
		// norms add it): as many non-zeros at the same places.
		for e, v := range blk {
			if (rb[e] == 0) != (v == 0) && rb[e] == 0 {
				t.Fatalf("%+v: padding element %d of the blocked gradient is %v", s, e, v)
			}
		}
		wb := make([]float32, len(plain))
		p.UnblockWeightGrad(wb, rb)
		for i := range rows {
			if wb[i] != rows[i] {
				t.Fatalf("%+v: BlockWeightGrad then UnblockWeightGrad changed element %d", s, i)
			}
		}
		// Per-row statistics over lanes equal those of the plain rows up
		// to order: against WSRowStats within γ⁶⁴_n.
		w := randSlice(r, s.Cout*d)
		wbk := make([]float32, l.Len)
		p.BlockWeightGrad(wbk, w)
		got := make([]WSStats, s.Cout)
		WSBlockedRowStats(got, blk, wbk, l)
		gamma := float64(l.Chunk/l.Block) * 0x1p-53 * 4
		for o := range got {
			want := WSRowStats(plain[o*d:(o+1)*d], w[o*d:(o+1)*d])
			for _, q := range [][3]float64{{got[o].SumSq, want.SumSq, want.SumSq}, {got[o].Sum, want.Sum, want.SumAbs},
				{got[o].SumAbs, want.SumAbs, want.SumAbs}, {got[o].Dot, want.Dot, want.DotAbs}, {got[o].DotAbs, want.DotAbs, want.DotAbs}} {
				if math.Abs(q[0]-q[1]) > gamma*q[2] {
					t.Fatalf("%+v: row %d: blocked sum %v, plain %v", s, o, q[0], q[1])
				}
			}
		}
	}
	if !blockedSeen && gramAVX512() {
		t.Fatal("no shape had a row-blocked weight-gradient layout on an AVX-512 CPU (oneDNN's jit:avx512_core uses OIhw16i16o-like layouts)")
	}
}

// TestWSBlockedRowStatsCMatchesGo: the C lanes give the Go loop's bits, for
// blocks of 16 and 8, with a partial last block and special values.
func TestWSBlockedRowStatsCMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, l := range []BlockedLayout{{Rows: 16, Block: 16, Chunk: 16 * 9}, {Rows: 40, Block: 16, Chunk: 16 * 27}, {Rows: 20, Block: 8, Chunk: 8 * 5}, {Rows: 3, Block: 4, Chunk: 12}} {
		l.Len = (l.Rows + l.Block - 1) / l.Block * l.Chunk
		for _, special := range []bool{false, true} {
			var g, w []float32
			if special {
				g, w = specialSlice(r, l.Len), specialSlice(r, l.Len)
			} else {
				g, w = randSlice(r, l.Len), randSlice(r, l.Len)
			}
			got, want := make([]WSStats, l.Rows), make([]WSStats, l.Rows)
			WSBlockedRowStats(got, g, w, l)
			wsBlockedRowStatsGo(want, g, w, l)
			for o := range got {
				a := [5]float64{got[o].SumSq, got[o].Sum, got[o].SumAbs, got[o].Dot, got[o].DotAbs}
				b := [5]float64{want[o].SumSq, want[o].Sum, want[o].SumAbs, want[o].Dot, want[o].DotAbs}
				for i := range a {
					if a[i] != a[i] && b[i] != b[i] {
						continue
					}
					if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
						t.Fatalf("layout %+v special=%v row %d sum %d: %v, Go loop %v", l, special, o, i, a[i], b[i])
					}
				}
			}
		}
	}
}
