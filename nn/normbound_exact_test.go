package nn

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"math/rand/v2"
	"testing"

	"dptrain/tensor"
)

// Zero-tolerance tests of the per-example norm bounds (privacy-critical,
// normbound.go): every reported squared norm must be ≥ the exact one, with
// "exact" computed in exact rational arithmetic on the float32 inputs (and,
// under weight standardisation, on the layer's own float32 ŵ and 1/s). A
// tolerance of even 1e-7 hides a missing error term, whose effect on
// ordinary inputs is ~1e-13 relative; these tests compare with none.
//
// The reference. Inputs and output gradients are float32 multiples of 2⁻³⁰
// below 2⁸ in magnitude (fixedInput checks it; the test inputs are quantised
// so), so every product dy·x is an integer multiple of 2⁻⁶⁰ below 2⁷⁶ and
// the per-example weight gradient ∇Ŵ_j = Σ_t dy_t·col_tᵀ is formed exactly in
// 128-bit integers. Its squared norm, and under WS the squared norm of
// (1/s_o)·P·g_o with P = I − 11ᵀ/n − ŵŵᵀ/n, are then formed exactly with
// math/big (ŵ and 1/s are float32, integer multiples of 2⁻¹⁴⁹):
//
//	n²·‖P g‖² = ‖n·g − σ·1 − ρ·ŵ‖²,   σ = 1ᵀg, ρ = ŵᵀg,
//
// so no division is needed until the result becomes a big.Rat.
//
// Mutation check (each bound term removed in turn, with OpenBLAS and with
// CGO_ENABLED=0): gramInner returning its plain estimate fails the A3b,
// random and cancelling tests and both gramInner tests; dropping its e_A or
// e_G term fails TestGramInnerAdversarialPerturbation, its evaluation term
// TestGramInnerExactOperands; dropping materialize64's gradient error term
// (with or without WS) fails the cancelling test; replacing wsCorrection's
// lower bound by its estimate, or dropping the ρ error radius, fails the
// random, cancelling and WS-aligned tests; patchGram returning e_A = 0
// fails TestPatchGramWithinStatedError (and, with the pure-Go kernels,
// TestConvNormsZeroTolWideGram); ghostSq passing e_G = 0 fails
// TestConvNormsZeroTolWideGram with the pure-Go kernels only (OpenBLAS's
// dot products round less than gramInner's evaluation term covers, on
// every input tried); storedSq returning its plain sum fails the random,
// cancelling and WS-aligned tests; storedWSSq returning its estimate fails
// the WS-aligned test. Not caught: terms dominated by others on
// every input found (gramInner's e_A·e_G term, covered by the doubling of
// e; the WS application term of materialize64, covered by its gradient
// error term; wsCorrection's σ, κ, λ and final-rounding slacks, covered by
// the ρ radius of the float32 forward output; storedWSSq's σ and ρ radii,
// float64-level, covered by the correction's worst-sign cross term) and the final few-ulp
// roundings (up64, normUpper).

const fixShift = 30 // test inputs are integer multiples of 2⁻³⁰

// quantize rounds v to a float32 multiple of 2⁻³⁰ (|v| < 2⁸ assumed).
func quantize(v float64) float32 {
	return float32(math.Round(v*(1<<fixShift)) / (1 << fixShift))
}

// fixedInput returns v·2³⁰ as an integer, or false when v is not a
// multiple of 2⁻³⁰ or |v| ≥ 2⁸ (the reference would not be exact).
func fixedInput(v float32) (int64, bool) {
	f := float64(v) * (1 << fixShift)
	if f != math.Trunc(f) || math.Abs(f) >= 1<<38 {
		return 0, false
	}
	return int64(f), true
}

// acc128 is a two's-complement 128-bit integer accumulator.
type acc128 struct{ hi, lo uint64 }

func (a *acc128) addProd(x, y int64) {
	if x == 0 || y == 0 {
		return
	}
	ux, uy := uint64(x), uint64(y)
	if x < 0 {
		ux = uint64(-x)
	}
	if y < 0 {
		uy = uint64(-y)
	}
	hi, lo := bits.Mul64(ux, uy)
	var c uint64
	if (x < 0) != (y < 0) {
		a.lo, c = bits.Sub64(a.lo, lo, 0)
		a.hi, _ = bits.Sub64(a.hi, hi, c)
		return
	}
	a.lo, c = bits.Add64(a.lo, lo, 0)
	a.hi, _ = bits.Add64(a.hi, hi, c)
}

func (a acc128) big() *big.Int {
	z := new(big.Int).SetUint64(a.hi)
	z.Lsh(z, 64)
	z.Or(z, new(big.Int).SetUint64(a.lo))
	if a.hi>>63 == 1 {
		z.Sub(z, new(big.Int).Lsh(big.NewInt(1), 128))
	}
	return z
}

// f32Scaled returns v·2^shift as an exact integer (fails unless it is one).
func f32Scaled(t *testing.T, v float32, shift int) *big.Int {
	t.Helper()
	f := new(big.Float).SetFloat64(float64(v))
	f.SetMantExp(f, shift)
	z, acc := f.Int(nil)
	if acc != big.Exact {
		t.Fatalf("%g·2^%d is not an integer", v, shift)
	}
	return z
}

// patchInts returns the patch matrix of batch row `row` of x for c as
// integers times 2⁻³⁰ (d × T, row-major), failing unless every input is a
// multiple of 2⁻³⁰ below 2⁸.
func patchInts(t *testing.T, c *Conv2d, x *tensor.Tensor, row int, col []int64) []int64 {
	t.Helper()
	cin, h, w := x.Shape[1], x.Shape[2], x.Shape[3]
	oh, ow := c.outHW(h, w)
	kk, tt := c.K, oh*ow
	d := cin * kk * kk
	col = col[:d*tt]
	for ci := 0; ci < cin; ci++ {
		for ki := 0; ki < kk; ki++ {
			for kj := 0; kj < kk; kj++ {
				cr := col[((ci*kk+ki)*kk+kj)*tt:][:tt]
				for oy := 0; oy < oh; oy++ {
					for ox := 0; ox < ow; ox++ {
						iy, ix := oy*c.Stride+ki-c.Pad, ox*c.Stride+kj-c.Pad
						var v int64
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							v = fixOrFail(t, x.Data[((row*cin+ci)*h+iy)*w+ix])
						}
						cr[oy*ow+ox] = v
					}
				}
			}
		}
	}
	return col
}

func fixOrFail(t *testing.T, v float32) int64 {
	t.Helper()
	f, ok := fixedInput(v)
	if !ok {
		t.Fatalf("input %g is not a multiple of 2^-%d below 2^8: the exact reference needs it", v, fixShift)
	}
	return f
}

// exactConvGrads returns, for each example j (k rows) and output channel o,
// the exact gradient row g_o = Σ_rows Σ_t dy[o,t]·col_t (d entries, as
// integers times 2⁻⁶⁰) of c's weights (w.r.t. Ŵ) for input x and output
// gradient dy: g[j*Cout+o][r].
func exactConvGrads(t *testing.T, c *Conv2d, x, dy *tensor.Tensor, k int) [][]*big.Int {
	t.Helper()
	b, cin, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	oh, ow := c.outHW(h, w)
	if dy.Shape[0] != b || dy.Shape[1] != c.Cout || dy.Shape[2] != oh || dy.Shape[3] != ow {
		t.Fatalf("dy %v for output %dx%d", dy.Shape, oh, ow)
	}
	p, tt := c.Cout, oh*ow
	d := cin * c.K * c.K
	col := make([]int64, d*tt)
	dyi := make([]int64, p*tt)
	acc := make([]acc128, p*d)
	out := make([][]*big.Int, 0, b/k*p)
	for j := 0; j < b/k; j++ {
		clear(acc)
		for a := 0; a < k; a++ {
			row := j*k + a
			patchInts(t, c, x, row, col)
			for i, v := range dy.Data[row*p*tt : (row+1)*p*tt] {
				dyi[i] = fixOrFail(t, v)
			}
			for o := 0; o < p; o++ {
				dr := dyi[o*tt : (o+1)*tt]
				for r := 0; r < d; r++ {
					ac := &acc[o*d+r]
					for q, v := range col[r*tt : (r+1)*tt] {
						ac.addProd(dr[q], v)
					}
				}
			}
		}
		for o := 0; o < p; o++ {
			g := make([]*big.Int, d)
			for r := range g {
				g[r] = acc[o*d+r].big()
			}
			out = append(out, g)
		}
	}
	return out
}

// exactSqNorms returns each example's exact ‖∇W_j‖² from the exact
// gradients of exactConvGrads: Σ‖g_o‖² without WS, Σ‖P g_o‖²/s_o² with it
// (c's float32 ŵ and 1/s_o, as its last Forward left them).
func exactSqNorms(t *testing.T, c *Conv2d, g [][]*big.Int) []*big.Rat {
	t.Helper()
	p := c.Cout
	m := len(g) / p
	out := make([]*big.Rat, m)
	if !c.WS {
		for j := range out {
			s := new(big.Int)
			sq := new(big.Int)
			for _, row := range g[j*p : (j+1)*p] {
				for _, v := range row {
					s.Add(s, sq.Mul(v, v))
				}
			}
			out[j] = new(big.Rat).SetFrac(s, new(big.Int).Lsh(big.NewInt(1), 2*2*fixShift))
		}
		return out
	}
	return exactWSSqNorms(t, c, g, 2*fixShift)
}

// exactWSSqNorms returns each example's exact Σ_o ‖P g_o‖²/s_o² for the
// gradient rows g w.r.t. Ŵ (p rows per example, integers times 2^−gs),
// with c's float32 ŵ and 1/s_o.
func exactWSSqNorms(t *testing.T, c *Conv2d, g [][]*big.Int, gs int) []*big.Rat {
	t.Helper()
	p, d := c.Cout, c.d()
	out := make([]*big.Rat, len(g)/p)
	// ŵ_r = W_r·2⁻¹⁴⁹, 1/s_o = I_o·2⁻¹⁴⁹, g_r = G_r·2^−gs:
	// n·(P g)_r = [(n·G_r − σ)·2^(149+149) − W_r·ρ]·2^−(298+gs) with
	// σ = ΣG_r and ρ = ΣW_rG_r; the total Σ_o I_o²·Σ_r(·)² is scaled by
	// 2^−(2·(298+gs)+298) and divided by n².
	const wsh = 149
	shift := uint(2 * wsh)
	wi := make([]*big.Int, p*d)
	for i, v := range c.wEff[:p*d] {
		wi[i] = f32Scaled(t, v, wsh)
	}
	inv := make([]*big.Int, p)
	for o := range inv {
		inv[o] = f32Scaled(t, c.wsInvStd[o], wsh)
	}
	n := big.NewInt(int64(d))
	den := new(big.Int).Mul(n, n)
	den.Lsh(den, uint(2*(gs+2*wsh)+2*wsh))
	sigma, rho, v, tmp, q, qq := new(big.Int), new(big.Int), new(big.Int), new(big.Int), new(big.Int), new(big.Int)
	for j := range out {
		total := new(big.Int)
		for o := 0; o < p; o++ {
			row, wr := g[j*p+o], wi[o*d:(o+1)*d]
			sigma.SetInt64(0)
			rho.SetInt64(0)
			for r, gv := range row {
				sigma.Add(sigma, gv)
				rho.Add(rho, tmp.Mul(wr[r], gv))
			}
			q.SetInt64(0)
			for r, gv := range row {
				v.Mul(n, gv)
				v.Sub(v, sigma)
				v.Lsh(v, shift)
				v.Sub(v, tmp.Mul(wr[r], rho))
				q.Add(q, tmp.Mul(v, v))
			}
			qq.Mul(inv[o], inv[o])
			total.Add(total, qq.Mul(qq, q))
		}
		out[j] = new(big.Rat).SetFrac(total, den)
	}
	return out
}

// exactStoredSqNorms returns the exact squared norm of each of m examples'
// gradients w.r.t. W given by c's stored float32 arrays (materialize-stored,
// p·d values per example): their plain norm, or under WS that of their
// image through the WS Jacobian.
func exactStoredSqNorms(t *testing.T, c *Conv2d, m int) []*big.Rat {
	t.Helper()
	p, d := c.Cout, c.d()
	pd := p * d
	// The kept arrays in plain order (copies of blocked ones: a reorder is
	// an exact permutation).
	stored := make([]float32, 0, m*pd)
	for j := 0; j < m; j++ {
		stored = append(stored, c.storedPlain(j)...)
	}
	if c.WS {
		rows := make([][]*big.Int, 0, m*p)
		for r := 0; r < m*p; r++ {
			row := make([]*big.Int, d)
			for i, v := range stored[r*d : (r+1)*d] {
				row[i] = f32Scaled(t, v, 149)
			}
			rows = append(rows, row)
		}
		return exactWSSqNorms(t, c, rows, 149)
	}
	out := make([]*big.Rat, m)
	sq := new(big.Int)
	for j := range out {
		s := new(big.Int)
		for _, v := range stored[j*pd : (j+1)*pd] {
			z := f32Scaled(t, v, 149)
			s.Add(s, sq.Mul(z, z))
		}
		out[j] = new(big.Rat).SetFrac(s, new(big.Int).Lsh(big.NewInt(1), 298))
	}
	return out
}

// belowExact reports whether got < exact (exactly; NaN counts as below).
func belowExact(got float64, exact *big.Rat) bool {
	if math.IsNaN(got) || math.IsInf(got, -1) {
		return true
	}
	if math.IsInf(got, 1) {
		return false
	}
	return new(big.Rat).SetFloat64(got).Cmp(exact) < 0
}

// relOver returns got/exact − 1 (for the log), computed in big.Float.
func relOver(got float64, exact *big.Rat) float64 {
	e := new(big.Float).SetPrec(200).SetRat(exact)
	if e.Sign() == 0 {
		return math.Inf(1)
	}
	gf := new(big.Float).SetPrec(200).SetFloat64(got)
	gf.Quo(gf, e)
	r, _ := gf.Float64()
	return r - 1
}

// zeroTolCheck fails for every example whose reported squared norm is
// below the exact one, and returns the largest relative overestimate.
func zeroTolCheck(t *testing.T, what string, got []float64, exact []*big.Rat) float64 {
	t.Helper()
	if len(got) != len(exact) {
		t.Fatalf("%s: %d norms for %d examples", what, len(got), len(exact))
	}
	worst := math.Inf(-1)
	for j := range got {
		if belowExact(got[j], exact[j]) {
			ef, _ := exact[j].Float64()
			t.Errorf("%s example %d: reported ‖g‖² = %.17g below the exact %.17g (relative %.3g)", what, j, got[j], ef, relOver(got[j], exact[j]))
		}
		worst = max(worst, relOver(got[j], exact[j]))
	}
	return worst
}

// convNormCase runs every rule of c (ghost, materialize, materialize-stored)
// on (x, dy) with k rows per example and checks, with zero tolerance, that
// each reported squared norm is ≥ the exact one (the stored rule: ≥ the
// exact norm of the gradient it stored). c must have no trainable bias
// (a frozen one is fine: it enters the WS correction's error terms but not
// the reported norm). It returns the relative overestimates per rule and
// whether the WS ghost rule kept its own bound for some example (rather
// than falling back to materialize64, detected as bit-equal results).
func convNormCase(t *testing.T, name string, c *Conv2d, x, dy *tensor.Tensor, k int, g [][]*big.Int) (over map[NormRule]float64, wsGhostKept bool) {
	t.Helper()
	if c.B != nil && !c.B.Frozen {
		t.Fatalf("%s: trainable bias (its norm would be part of what is reported)", name)
	}
	c.Forward(x, true)
	exact := exactSqNorms(t, c, g)
	over = map[NormRule]float64{}
	res := map[NormRule][]float64{}
	for _, method := range []NormRule{RuleGhost, RuleMaterialize, RuleMaterializeStored} {
		got := convNorms(c, x, dy, k, method)
		res[method] = got
		ref := exact
		if method == RuleMaterializeStored {
			ref = exactStoredSqNorms(t, c, len(got))
		}
		over[method] = zeroTolCheck(t, name+" "+method.String(), got, ref)
	}
	if c.WS {
		for j, v := range res[RuleGhost] {
			if v != res[RuleMaterialize][j] {
				wsGhostKept = true
			}
		}
	}
	return over, wsGhostKept
}

func logOver(t *testing.T, name string, over map[NormRule]float64) {
	t.Helper()
	t.Logf("%-34s relative overestimate: ghost %.3g, materialize %.3g, stored %.3g", name, over[RuleGhost], over[RuleMaterialize], over[RuleMaterializeStored])
}

// spreadTensor returns quantised N(0,1)·2^U(−spread, spread) values: a wide
// range of magnitudes, so that float64 sums of the exact float32 products
// do round.
func spreadTensor(r *rand.Rand, spread float64, shape ...int) *tensor.Tensor {
	x := tensor.New(shape...)
	for i := range x.Data {
		x.Data[i] = quantize(r.NormFloat64() * math.Exp2(spread*(2*r.Float64()-1)))
	}
	return x
}

// TestExactReferenceAgreesWithDD checks the exact reference itself against
// the double-double one of normbound_test.go (exactConvSqNorms) on inputs
// without cancellation, where both are accurate far beyond 1e-12.
func TestExactReferenceAgreesWithDD(t *testing.T) {
	for _, ws := range []bool{false, true} {
		r := rand.New(rand.NewPCG(81, 82))
		c := NewConv2d("c", 5, 7, 3, 2, 1, false, ws, r)
		x := spreadTensor(r, 2, 6, 5, 9, 9)
		dy := spreadTensor(r, 2, c.Forward(x, true).Shape...)
		for _, k := range []int{1, 2} {
			exact := exactSqNorms(t, c, exactConvGrads(t, c, x, dy, k))
			dd := exactConvSqNorms(c, x, dy, k)
			for j := range dd {
				ef, _ := exact[j].Float64()
				if math.Abs(ef-dd[j]) > 1e-12*ef {
					t.Errorf("ws=%v k=%d example %d: exact %.17g, double-double %.17g", ws, k, j, ef, dd[j])
				}
			}
		}
	}
	if _, ok := fixedInput(0x1p-31); ok {
		t.Error("fixedInput accepted 2^-31")
	}
	if _, ok := fixedInput(300); ok {
		t.Error("fixedInput accepted 300")
	}
	for _, v := range []int64{0, 1, -1, 1<<62 - 1, -(1 << 62)} {
		var a acc128
		a.addProd(v, 3)
		a.addProd(-v, 1)
		if got := a.big(); got.Cmp(new(big.Int).Mul(big.NewInt(v), big.NewInt(2))) != 0 {
			t.Errorf("acc128: 3·%d − %d = %v", v, v, got)
		}
	}
}

// TestConvNormsZeroTolA3b is the review's A3b input (conv 64→64 k3 p1 on
// 16×16, constant input channels 1 + 0.001·c, checkerboard output
// gradients ±(1 + 10⁻³·N(0,1))) with the exact reference and zero
// tolerance, for every rule, with and without WS.
func TestConvNormsZeroTolA3b(t *testing.T) {
	r := rand.New(rand.NewPCG(61, 62))
	c0 := NewConv2d("c", 64, 64, 3, 1, 1, false, false, r)
	x, dy := a3bInput(r, 2, 64, 64, 16)
	g := exactConvGrads(t, c0, x, dy, 1)
	for _, ws := range []bool{false, true} {
		c := NewConv2d("c", 64, 64, 3, 1, 1, false, ws, rand.New(rand.NewPCG(61, 62)))
		name := fmt.Sprintf("A3b ws=%v", ws)
		over, _ := convNormCase(t, name, c, x, dy, 1, g)
		logOver(t, name, over)
	}
}

// TestConvNormsZeroTolRandom: random inputs over convolutions that take
// every path of the norm code (pixel and direct patch Grams, strides, 1×1,
// groups of K rows, WS with and without a (frozen) bias, d ≥ 576), with
// magnitudes spread over 2^±spread, zero tolerance.
func TestConvNormsZeroTolRandom(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		cin, cout, k, s, p, hw int
		ws, bias               bool
		group                  int
		spread                 float64
	}{
		{"8→8 k3 p1 8×8", 8, 8, 3, 1, 1, 8, false, false, 1, 0},
		{"8→8 k3 p1 8×8 spread", 8, 8, 3, 1, 1, 8, false, false, 1, 6},
		{"8→8 k3 p1 8×8 ws", 8, 8, 3, 1, 1, 8, true, false, 1, 0},
		{"8→8 k3 p1 8×8 ws spread", 8, 8, 3, 1, 1, 8, true, false, 1, 6},
		{"8→8 k3 p1 6×6 K=2 ws bias", 8, 8, 3, 1, 1, 6, true, true, 2, 3},
		{"12→20 k3 s2 p1 9×9 ws", 12, 20, 3, 2, 1, 9, true, false, 1, 3},
		{"32→16 k1 s2 8×8", 32, 16, 1, 2, 0, 8, false, false, 1, 3},
		{"3→8 k1 5×5 ws", 3, 8, 1, 1, 0, 5, true, false, 1, 3},
		{"4→8 k4 s2 10×10 K=2 ws", 4, 8, 4, 2, 0, 10, true, false, 2, 3},
		{"64→16 k3 p1 6×6 (d=576)", 64, 16, 3, 1, 1, 6, false, false, 1, 3},
		{"64→16 k3 p1 6×6 (d=576) ws", 64, 16, 3, 1, 1, 6, true, false, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(83, uint64(tc.cin*tc.hw+tc.group)))
			c := NewConv2d("c", tc.cin, tc.cout, tc.k, tc.s, tc.p, tc.bias, tc.ws, r)
			if c.B != nil {
				for i := range c.B.Value {
					c.B.Value[i] = float32(10 * r.NormFloat64())
				}
				c.B.Frozen = true
			}
			b := 4 * tc.group
			x := spreadTensor(r, tc.spread, b, tc.cin, tc.hw, tc.hw)
			dy := spreadTensor(r, tc.spread, c.Forward(x, true).Shape...)
			g := exactConvGrads(t, c, x, dy, tc.group)
			over, kept := convNormCase(t, tc.name, c, x, dy, tc.group, g)
			oh, ow := c.outHW(tc.hw, tc.hw)
			logOver(t, fmt.Sprintf("pixel=%v wsGhostKept=%v", c.usePixelGram(tc.hw, tc.hw, tc.group, oh*ow), kept), over)
		})
	}
}

// TestConvNormsZeroTolWideGram: 1×1 convolutions of one pixel with K = 2
// rows per example and one wide side (1024 input or output channels), so
// that each Gram entry is one long float64 dot product whose rounding can
// exceed the other error terms of the ghost bound (it does with the pure-Go
// kernels, which sum in order: there these inputs catch a ghost rule that
// leaves out e_A or e_G). Zero tolerance, every rule.
func TestConvNormsZeroTolWideGram(t *testing.T) {
	for _, tc := range []struct{ cin, cout int }{{1024, 1}, {1, 1024}} {
		name := fmt.Sprintf("%d→%d", tc.cin, tc.cout)
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(95, uint64(tc.cin)))
			const m = 32
			c := NewConv2d("c", tc.cin, tc.cout, 1, 1, 0, false, false, r)
			x := spreadTensor(r, 0, 2*m, tc.cin, 1, 1)
			dy := spreadTensor(r, 0, 2*m, tc.cout, 1, 1)
			over, _ := convNormCase(t, name, c, x, dy, 2, exactConvGrads(t, c, x, dy, 2))
			logOver(t, name, over)
		})
	}
}

// cancelRowsInput returns m examples of two rows each whose contributions
// cancel: the second row's input is the first's times (1 + jitter·N(0,1))
// and its output gradient minus the first's, so that ‖∇W_j‖² is about
// jitter² of the sum of the terms.
func cancelRowsInput(r *rand.Rand, m, cin, cout, hw, ohw int, jitter, spread float64) (x, dy *tensor.Tensor) {
	x = spreadTensor(r, spread, 2*m, cin, hw, hw)
	dy = spreadTensor(r, spread, 2*m, cout, ohw, ohw)
	px, py := cin*hw*hw, cout*ohw*ohw
	for j := 0; j < m; j++ {
		for i := 0; i < px; i++ {
			x.Data[(2*j+1)*px+i] = quantize(float64(x.Data[2*j*px+i]) * (1 + jitter*r.NormFloat64()))
		}
		for i := 0; i < py; i++ {
			dy.Data[(2*j+1)*py+i] = -dy.Data[2*j*py+i]
		}
	}
	return x, dy
}

// cancelPositionsInput is the same within one row, for a k3 s3 convolution
// (disjoint patches) on 6×6: the right column of patches repeats the left
// one times (1 + jitter·N(0,1)), with opposite output gradients.
func cancelPositionsInput(r *rand.Rand, b, cin, cout int, jitter, spread float64) (x, dy *tensor.Tensor) {
	x = spreadTensor(r, spread, b, cin, 6, 6)
	dy = spreadTensor(r, spread, b, cout, 2, 2)
	for i := 0; i < b*cin*6; i++ { // every input row of 6 pixels
		row := x.Data[i*6 : (i+1)*6]
		for q := 0; q < 3; q++ {
			row[3+q] = quantize(float64(row[q]) * (1 + jitter*r.NormFloat64()))
		}
	}
	for i := 0; i < b*cout*2; i++ { // every output row of 2 positions
		dy.Data[2*i+1] = -dy.Data[2*i]
	}
	return x, dy
}

// TestConvNormsZeroTolCancelling: gradients that cancel across the rows of
// an example (K = 2) or across positions, to 10⁻⁶..10⁻⁴ relative (squared
// norms 10⁻¹²..10⁻⁸ of the sum of the terms, as in
// TestLinearNormNeverBelowExact), where the float64 rounding errors of the
// Grams and of the materialised gradient are far above their relative size
// on ordinary inputs. Zero tolerance, every rule, with and without WS.
func TestConvNormsZeroTolCancelling(t *testing.T) {
	for _, jitter := range []float64{1e-6, 1e-4} {
		for _, ws := range []bool{false, true} {
			for _, tc := range []struct {
				name               string
				cin, cout, hw, kk  int
				stride, pad, group int
				positions          bool
				spread             float64
			}{
				{"rows 8→8 k3 p1 8×8", 8, 8, 8, 3, 1, 1, 2, false, 4},
				{"rows 8→8 k3 p1 5×5", 8, 8, 5, 3, 1, 1, 2, false, 0},
				{"rows 64→8 k3 p1 4×4 (d=576)", 64, 8, 4, 3, 1, 1, 2, false, 3},
				{"positions 16→8 k3 s3", 16, 8, 6, 3, 3, 0, 1, true, 4},
				{"positions 64→8 k3 s3 (d=576)", 64, 8, 6, 3, 3, 0, 1, true, 3},
			} {
				name := fmt.Sprintf("%s jitter=%g ws=%v", tc.name, jitter, ws)
				t.Run(name, func(t *testing.T) {
					r := rand.New(rand.NewPCG(85, uint64(tc.cin*tc.hw)+uint64(jitter*1e7)))
					c := NewConv2d("c", tc.cin, tc.cout, tc.kk, tc.stride, tc.pad, false, ws, r)
					var x, dy *tensor.Tensor
					if tc.positions {
						x, dy = cancelPositionsInput(r, 4, tc.cin, tc.cout, jitter, tc.spread)
					} else {
						oh, _ := c.outHW(tc.hw, tc.hw)
						x, dy = cancelRowsInput(r, 3, tc.cin, tc.cout, tc.hw, oh, jitter, tc.spread)
					}
					g := exactConvGrads(t, c, x, dy, tc.group)
					over, kept := convNormCase(t, name, c, x, dy, tc.group, g)
					oh, ow := c.outHW(x.Shape[2], x.Shape[3])
					logOver(t, fmt.Sprintf("pixel=%v wsGhostKept=%v", c.usePixelGram(x.Shape[2], x.Shape[3], tc.group, oh*ow), kept), over)
				})
			}
		}
	}
}

// TestConvNormsZeroTolWSAligned: under WS, gradient rows nearly in the
// span of 1 and ŵ_o, so that the WS correction removes most of ‖g_o‖² and
// the error of its estimate (the float32 forward output it rests on) is
// large relative to the result: the correction's lower-bound slack
// (wsCorrection) and the materialised WS error terms (materialize64) are
// what keep the reported norm above the exact one. Every weight row is
// the single patch (one output position) plus ε·noise, with ε chosen so
// that the WS ghost rule keeps its own bound (ε ≥ 0.3) or falls back to
// materialising (ε = 10⁻³); a frozen bias adds its error terms.
func TestConvNormsZeroTolWSAligned(t *testing.T) {
	for _, tc := range []struct {
		eps      float64
		bias     bool
		wantKept bool
	}{{0.3, false, true}, {0.3, true, true}, {1, false, true}, {1e-3, false, false}, {1e-3, true, false}} {
		name := fmt.Sprintf("ε=%g bias=%v", tc.eps, tc.bias)
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(87, uint64(tc.eps*1e4)))
			const cin, cout, hw, b = 16, 8, 3, 6
			c := NewConv2d("c", cin, cout, 3, 1, 0, tc.bias, true, r)
			if c.B != nil {
				for i := range c.B.Value {
					c.B.Value[i] = float32(r.NormFloat64())
				}
				c.B.Frozen = true
			}
			base := make([]float64, cin*9)
			for i := range base {
				base[i] = r.NormFloat64()
			}
			d := cin * 9
			for o := 0; o < cout; o++ {
				for i := 0; i < d; i++ {
					c.W.Value[o*d+i] = float32(base[i] + tc.eps*r.NormFloat64())
				}
			}
			x := tensor.New(b, cin, hw, hw)
			for j := 0; j < b; j++ {
				s := math.Exp2(4 * (2*r.Float64() - 1))
				for i := 0; i < d; i++ {
					x.Data[j*d+i] = quantize(s * (base[i] + 1e-3*r.NormFloat64()))
				}
			}
			dy := spreadTensor(r, 2, c.Forward(x, true).Shape...)
			g := exactConvGrads(t, c, x, dy, 1)
			over, kept := convNormCase(t, name, c, x, dy, 1, g)
			if kept != tc.wantKept {
				t.Errorf("WS ghost kept its own bound: %v, want %v (the input no longer tests that path)", kept, tc.wantKept)
			}
			logOver(t, fmt.Sprintf("wsGhostKept=%v", kept), over)
		})
	}
}

// ---- gramInner, directly ----

// gramCase is a set of T vectors a_s (d entries) and g_s (p entries),
// integers times 2⁻³⁰ (A = nil: the bias's all-ones Gram).
type gramCase struct {
	n    int
	a, g [][]int64
}

// exactGram returns the exact Gram (integers times 2⁻⁶⁰) of the vectors.
func exactGram(v [][]int64) [][]*big.Int {
	n := len(v)
	out := make([][]*big.Int, n)
	for s := range out {
		out[s] = make([]*big.Int, n)
		for u := range out[s] {
			var a acc128
			for i, x := range v[s] {
				a.addProd(x, v[u][i])
			}
			out[s][u] = a.big()
		}
	}
	return out
}

var two60 = new(big.Int).Lsh(big.NewInt(1), 60)

func ratOf(z *big.Int) *big.Rat { return new(big.Rat).SetFrac(z, two60) }

// sqrtLo returns a float64 ≤ √x (x ≥ 0 exact).
func sqrtLo(x *big.Rat) float64 {
	f, _ := x.Float64()
	s := math.Sqrt(f) * (1 - 1e-15)
	for {
		sr := new(big.Rat).SetFloat64(s)
		if sr.Mul(sr, sr).Cmp(x) <= 0 {
			return s
		}
		s = math.Nextafter(s, 0)
	}
}

// perturbedGram returns float64 matrices Ã, G̃ (upper triangles, row-major,
// stride n; the strict lower triangles NaN: gramInner must not read them)
// with |Ã_st − A_st| ≤ eA·α_sα_t and |G̃_st − G_st| ≤ eG·β_sβ_t exactly
// (α_s = ‖a_s‖, β_s = ‖g_s‖), each pair of perturbations at the corner of
// its box that minimises Ã_st·G̃_st (a bilinear function's minimum over a
// box is at a corner): the most adversarial input within the stated
// error bounds. With ga nil, A is all ones and unperturbed.
func perturbedGram(A, G [][]*big.Int, n int, eA, eG float64) (ga, gg []float64) {
	gg = make([]float64, n*n)
	if A != nil {
		ga = make([]float64, n*n)
	}
	for i := range gg {
		gg[i] = math.NaN()
		if ga != nil {
			ga[i] = math.NaN()
		}
	}
	alpha, beta := make([]float64, n), make([]float64, n)
	for s := 0; s < n; s++ {
		alpha[s] = 1
		if A != nil {
			alpha[s] = sqrtLo(ratOf(A[s][s]))
		}
		beta[s] = sqrtLo(ratOf(G[s][s]))
	}
	for s := 0; s < n; s++ {
		for u := s; u < n; u++ {
			gx := ratOf(G[s][u])
			ax := new(big.Rat).SetInt64(1)
			if A != nil {
				ax = ratOf(A[s][u])
			}
			// exact radii (products of float64 lower bounds, ≤ the stated ones)
			ra := new(big.Rat).SetFloat64(alpha[s])
			ra.Mul(ra, new(big.Rat).SetFloat64(alpha[u]))
			ra.Mul(ra, new(big.Rat).SetFloat64(eA))
			if A == nil {
				ra.SetInt64(0)
			}
			rg := new(big.Rat).SetFloat64(beta[s])
			rg.Mul(rg, new(big.Rat).SetFloat64(beta[u]))
			rg.Mul(rg, new(big.Rat).SetFloat64(eG))
			var best [2]float64
			bestP := math.Inf(1)
			for _, sa := range []int{-1, 1} {
				for _, sg := range []int{-1, 1} {
					av := corner(ax, ra, sa)
					gv := corner(gx, rg, sg)
					if p := av * gv; p < bestP {
						bestP, best = p, [2]float64{av, gv}
					}
				}
			}
			if ga != nil {
				ga[s*n+u] = best[0]
			}
			gg[s*n+u] = best[1]
		}
	}
	return ga, gg
}

// corner returns the float64 nearest x + sign·r that is within r of x
// (exactly), moving toward x when rounding leaves the interval.
func corner(x, r *big.Rat, sign int) float64 {
	tgt := new(big.Rat).Set(r)
	if sign < 0 {
		tgt.Neg(tgt)
	}
	tgt.Add(tgt, x)
	v, _ := tgt.Float64()
	xf, _ := x.Float64()
	for {
		d := new(big.Rat).SetFloat64(v)
		d.Sub(d, x)
		if d.Abs(d).Cmp(r) <= 0 {
			return v
		}
		if v == xf {
			panic(fmt.Sprintf("no float64 within %v of %v", r.FloatString(30), x.FloatString(30)))
		}
		v = math.Nextafter(v, xf)
	}
}

// exactInner returns Σ_st A_st·G_st (A nil: all ones) exactly.
func exactInner(A, G [][]*big.Int, n int) *big.Rat {
	s := new(big.Int)
	p := new(big.Int)
	for i := 0; i < n; i++ {
		for u := 0; u < n; u++ {
			if A == nil {
				s.Add(s, new(big.Int).Lsh(G[i][u], 60))
				continue
			}
			s.Add(s, p.Mul(A[i][u], G[i][u]))
		}
	}
	return new(big.Rat).SetFrac(s, new(big.Int).Lsh(big.NewInt(1), 120))
}

// gramVectors returns n vectors of dim entries: random with magnitudes
// spread over 2^±spread, or (cancel > 0) in pairs v_{2i+1} = ±v_{2i}·(1 +
// cancel·N(0,1)) (sign −1 when neg), quantised to 2⁻³⁰.
func gramVectors(r *rand.Rand, n, dim int, spread, cancel float64, neg bool) [][]int64 {
	v := make([][]int64, n)
	for s := range v {
		v[s] = make([]int64, dim)
		for i := range v[s] {
			var f float32
			if cancel > 0 && s%2 == 1 {
				m := 1.0
				if neg {
					m = -1
				}
				prev := float64(v[s-1][i]) / (1 << fixShift)
				f = quantize(m * prev * (1 + cancel*r.NormFloat64()))
			} else {
				f = quantize(r.NormFloat64() * math.Exp2(spread*(2*r.Float64()-1)))
			}
			v[s][i], _ = fixedInput(f)
		}
	}
	return v
}

// TestGramInnerAdversarialPerturbation feeds gramInner Grams perturbed to
// the edge of the stated error bounds (|ΔA_st| ≤ e_A·α_sα_t, |ΔG_st| ≤
// e_G·β_sβ_t, each entry at the corner that lowers Ã_st·G̃_st most) and
// checks, with zero tolerance, that its upper bound is ≥ the exact ⟨A, G⟩
// of the unperturbed Grams: random vectors, vectors whose inner product
// cancels (pairs, as with K rows or positions), nearly orthogonal vectors
// with large e (boxes around 0, where the e_A·e_G term matters), the bias
// path (A all ones), and error levels from float64 rounding to 0.3.
func TestGramInnerAdversarialPerturbation(t *testing.T) {
	type tc struct {
		name         string
		n, d, p      int
		spread       float64
		cancel       float64
		bias         bool
		eA, eG       float64
		wantEstBelow bool // the perturbed estimate must fall below the exact value
	}
	var cases []tc
	// e = unit64: the Gram only rounded to float64 (the least error a
	// float64 Gram of these integers can have).
	for _, e := range [][2]float64{{gamma(65, unit64), gamma(17, unit64)}, {1e-6, unit64}, {unit64, 1e-6}, {1e-3, 1e-3}, {0.3, 0.3}, {0.3, unit64}, {unit64, 0.3}} {
		cases = append(cases,
			tc{"random", 20, 64, 16, 3, 0, false, e[0], e[1], true},
			tc{"cancelling pairs", 20, 64, 16, 3, 1e-6, false, e[0], e[1], true},
			tc{"cancelling pairs n=2", 2, 300, 20, 0, 1e-6, false, e[0], e[1], true},
			tc{"near-orthogonal", 12, 4096, 4096, 0, 0, false, e[0], e[1], true},
			tc{"bias", 20, 1, 16, 3, 1e-6, true, e[0], e[1], true},
			tc{"n=1", 1, 64, 16, 3, 0, false, e[0], e[1], true},
		)
	}
	for i, c := range cases {
		name := fmt.Sprintf("%s eA=%.3g eG=%.3g", c.name, c.eA, c.eG)
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(89, uint64(i)))
			var A [][]*big.Int
			if !c.bias {
				A = exactGram(gramVectors(r, c.n, c.d, c.spread, c.cancel, false))
			}
			G := exactGram(gramVectors(r, c.n, c.p, c.spread, c.cancel, true))
			exact := exactInner(A, G, c.n)
			ga, gg := perturbedGram(A, G, c.n, c.eA, c.eG)
			est, upper := gramInner(ga, gg, c.n, c.eA, c.eG, make([]float64, 2*c.n))
			if belowExact(upper, exact) {
				ef, _ := exact.Float64()
				t.Errorf("upper bound %.17g below the exact ⟨A,G⟩ = %.17g (estimate %.17g)", upper, ef, est)
			}
			if c.wantEstBelow && !belowExact(est, exact) {
				t.Errorf("the perturbation did not push the estimate %.17g below the exact value: not adversarial", est)
			}
			t.Logf("estimate %.3g relative, upper bound %.3g relative to the exact ⟨A,G⟩", relOver(est, exact), relOver(upper, exact))
		})
	}
}

// TestGramInnerExactOperands: with e_A = e_G = 0 (operands taken as exact)
// the only error left is the float64 evaluation of ⟨Ã, G̃⟩; on cancelling
// operands with a wide range of magnitudes its rounding error puts the plain
// estimate below the exact value for some of the seeds, and the bound must
// stay above it on all.
func TestGramInnerExactOperands(t *testing.T) {
	below := 0
	const seeds = 40
	for seed := 0; seed < seeds; seed++ {
		r := rand.New(rand.NewPCG(91, uint64(seed)))
		n := 30
		ga, gg := make([]float64, n*n), make([]float64, n*n)
		// Ã_st·G̃_st terms of magnitudes over 2^±20 that nearly cancel:
		// the last entry of the upper triangle takes the (rounded) negated
		// sum of the others.
		for s := 0; s < n; s++ {
			for u := s; u < n; u++ {
				ga[s*n+u] = r.NormFloat64() * math.Exp2(20*(2*r.Float64()-1))
				gg[s*n+u] = r.NormFloat64() * math.Exp2(20*(2*r.Float64()-1))
			}
		}
		var sum float64
		for s := 0; s < n; s++ {
			for u := s; u < n; u++ {
				if s == n-2 && u == n-1 {
					continue
				}
				w := 2.0
				if s == u {
					w = 1
				}
				sum += w * ga[s*n+u] * gg[s*n+u]
			}
		}
		ga[(n-2)*n+n-1] = 1
		gg[(n-2)*n+n-1] = -sum / 2
		ex := new(big.Rat)
		for s := 0; s < n; s++ {
			for u := s; u < n; u++ {
				p := new(big.Rat).SetFloat64(ga[s*n+u])
				p.Mul(p, new(big.Rat).SetFloat64(gg[s*n+u]))
				if s != u {
					p.Add(p, p)
				}
				ex.Add(ex, p)
			}
		}
		if ex.Sign() < 0 { // make the exact value positive (the bound is clamped at 0)
			for i := range gg {
				gg[i] = -gg[i]
			}
			ex.Neg(ex)
		}
		est, upper := gramInner(ga, gg, n, 0, 0, make([]float64, 2*n))
		if belowExact(upper, ex) {
			ef, _ := ex.Float64()
			t.Errorf("seed %d: upper bound %.17g below the exact %.17g", seed, upper, ef)
		}
		if belowExact(est, ex) {
			below++
		}
	}
	if below == 0 {
		t.Errorf("the plain estimate was never below the exact value: the test does not exercise the evaluation error term")
	}
	t.Logf("plain estimate below the exact value on %d of %d seeds", below, seeds)
}

// TestPatchGramWithinStatedError checks patchGram's contract directly, on
// both of its paths (the patch SYRK and the pixel Gram combined over the
// K² offsets): every entry of the computed Gram is within the e_A it
// returns, |Ã_st − A_st| ≤ e_A·Σ_r|a_rs||a_rt|, and under WS every column
// sum within e_A·colabs_s, exactly; and some entries are inexact, so that
// an e_A too small (0) fails.
func TestPatchGramWithinStatedError(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		cin, k, s, p, hw, group int
		ws, wantPixel           bool
	}{
		{"direct k3 s2 p1 ws", 12, 3, 2, 1, 9, 1, true, false},
		{"direct k1 s2", 32, 1, 2, 0, 8, 1, false, false},
		{"direct 64 k3 s2 p1 6×6 (d=576) K=2 ws", 64, 3, 2, 1, 6, 2, true, false},
		{"pixel 64 k3 p1 4×4 (d=576) K=2", 64, 3, 1, 1, 4, 2, false, true},
		{"pixel k3 p1 7×7 ws", 16, 3, 1, 1, 7, 1, true, true},
		{"pixel k3 p1 6×6 K=2", 16, 3, 1, 1, 6, 2, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(93, uint64(tc.cin*tc.hw+tc.group)))
			c := NewConv2d("c", tc.cin, 4, tc.k, tc.s, tc.p, false, tc.ws, r)
			b := 3 * tc.group
			x := spreadTensor(r, 6, b, tc.cin, tc.hw, tc.hw)
			c.Forward(x, true)
			h, w := tc.hw, tc.hw
			oh, ow := c.outHW(h, w)
			tt, k := oh*ow, tc.group
			kt, d := k*tt, c.d()
			pixel := c.usePixelGram(h, w, k, tt)
			if pixel != tc.wantPixel {
				t.Fatalf("pixel Gram %v, want %v", pixel, tc.wantPixel)
			}
			if pixel {
				c.pix.build(c, h, w, k)
			}
			rows := c.identityRows(b)
			sc := &convScratch{}
			inexact, lastEA := 0, 0.0
			colInt := make([]int64, d*tt)
			for j := 0; j < b/k; j++ {
				// the example's patches as integers: column s = a·T + q
				a := make([][]int64, kt)
				for s := range a {
					a[s] = make([]int64, d)
				}
				for ra := 0; ra < k; ra++ {
					patchInts(t, c, x, j*k+ra, colInt)
					for rr := 0; rr < d; rr++ {
						for q := 0; q < tt; q++ {
							a[ra*tt+q][rr] = colInt[rr*tt+q]
						}
					}
				}
				var col []float32
				var ld int
				if !pixel {
					col, ld = c.cols(&sc.col, rows[j*k:(j+1)*k], tt)
				}
				eA := c.patchGram(sc, j, col, ld, k, tt, h, w, pixel)
				ea := new(big.Rat).SetFloat64(eA)
				lastEA = eA
				for s := 0; s < kt; s++ {
					for u := s; u < kt; u++ {
						var ex, ab acc128
						for i, v := range a[s] {
							ex.addProd(v, a[u][i])
							ab.addProd(max(v, -v), max(a[u][i], -a[u][i]))
						}
						diff := new(big.Rat).SetFloat64(sc.gramA[s*kt+u])
						diff.Sub(diff, ratOf(ex.big()))
						if diff.Sign() != 0 {
							inexact++
						}
						lim := new(big.Rat).Mul(ea, ratOf(ab.big()))
						if diff.Abs(diff).Cmp(lim) > 0 {
							df, _ := diff.Float64()
							lf, _ := lim.Float64()
							t.Errorf("example %d Gram (%d,%d): error %.3g beyond e_A·Σ|a||a| = %.3g", j, s, u, df, lf)
						}
					}
					if !tc.ws {
						continue
					}
					var cs int64
					for _, v := range a[s] {
						cs += v
					}
					diff := new(big.Rat).SetFloat64(sc.colsum[s])
					diff.Sub(diff, new(big.Rat).SetFrac(big.NewInt(cs), new(big.Int).Lsh(big.NewInt(1), fixShift)))
					lim := new(big.Rat).Mul(ea, new(big.Rat).SetFloat64(sc.colabs[s]))
					if diff.Abs(diff).Cmp(lim) > 0 {
						t.Errorf("example %d column %d: column sum %.17g off by more than e_A·colabs", j, s, sc.colsum[s])
					}
				}
			}
			if inexact == 0 {
				t.Error("every Gram entry exact: the test does not exercise e_A")
			}
			t.Logf("pixel=%v e_A = %.3g: %d of %d Gram entries inexact", pixel, lastEA, inexact, b/k*kt*(kt+1)/2)
		})
	}
}
