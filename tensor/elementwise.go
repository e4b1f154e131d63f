package tensor

import "math"

// Single-threaded elementwise kernels and reductions. Layers split their
// tensors with ParallelFor and call these on each piece. Inputs are never
// modified; dst may alias an input only where the doc says so. Long slices
// go to vectorised C versions (elementwise_c.c) that give the same bits;
// so every product that is added to something is converted explicitly
// (float32(a*b) + c): the Go spec lets a compiler fuse a*b + c into one
// rounding (GOAMD64=v3 does).
//
// Reductions add float32 terms in 16 independent float32 chains over
// blocks of sumBlock elements and add the blocks' totals in float64: the
// chains keep the adder busy (a single chain waits out the latency of every
// add) and fill a vector register in the C versions, and the float32
// partial sums see at most sumBlock/16 terms each.

const sumBlock = 256

func checkLen(op string, n int, others ...int) {
	for _, m := range others {
		if m != n {
			shapePanic(op, "lengths %d and %d differ", n, m)
		}
	}
}

// Sum returns Σ x[i].
func Sum(x []float32) float64 {
	if haveCKernels && len(x) >= cKernelMin {
		return sumC(x)
	}
	return sumGo(x)
}

func sumGo(x []float32) float64 {
	var s float64
	for len(x) > 0 {
		b := x[:min(len(x), sumBlock)]
		x = x[len(b):]
		var a [chains]float32
		for len(b) >= chains {
			c := b[:chains]
			for j := range chains {
				a[j] += c[j]
			}
			b = b[chains:]
		}
		for _, v := range b {
			a[0] += v
		}
		s += float64(chainTotal(&a))
	}
	return s
}

// chains is the number of independent float32 partial sums of the
// reductions: chain j takes elements j, j+chains, … of a block, the block's
// tail goes to chain 0, and chainTotal adds the chains in a fixed tree. The
// C versions (elementwise_c.c) keep the chains in one vector register.
const chains = 16

// chainTotal adds the chains pairwise, halving their number each round
// (a[j] += a[j+w] for w = 8, 4, 2, 1), and returns the total.
func chainTotal(a *[chains]float32) float32 {
	for w := chains / 2; w >= 1; w /= 2 {
		for j := 0; j < w; j++ {
			a[j] += a[j+w]
		}
	}
	return a[0]
}

// CenteredMoments returns Σ (x[i]−m) and Σ (x[i]−m)². With m close to the
// mean, Σ(x−m)²/n − (Σ(x−m)/n)² is the variance without the cancellation of
// the one-pass formula.
func CenteredMoments(x []float32, m float32) (s1, s2 float64) {
	if haveCKernels && len(x) >= cKernelMin {
		return centeredMomentsC(x, m)
	}
	return centeredMomentsGo(x, m)
}

func centeredMomentsGo(x []float32, m float32) (s1, s2 float64) {
	for len(x) > 0 {
		b := x[:min(len(x), sumBlock)]
		x = x[len(b):]
		var a, q [chains]float32
		for len(b) >= chains {
			c := b[:chains]
			for j := range chains {
				d := c[j] - m
				a[j] += d
				q[j] += float32(d * d)
			}
			b = b[chains:]
		}
		for _, v := range b {
			d := v - m
			a[0] += d
			q[0] += float32(d * d)
		}
		s1 += float64(chainTotal(&a))
		s2 += float64(chainTotal(&q))
	}
	return s1, s2
}

// CenteredDots returns Σ dy[i] and Σ dy[i]·(x[i]−m).
func CenteredDots(dy, x []float32, m float32) (sdy, sdyx float64) {
	checkLen("CenteredDots", len(dy), len(x))
	if haveCKernels && len(dy) >= cKernelMin {
		return centeredDotsC(dy, x, m)
	}
	return centeredDotsGo(dy, x, m)
}

func centeredDotsGo(dy, x []float32, m float32) (sdy, sdyx float64) {
	for len(dy) > 0 {
		n := min(len(dy), sumBlock)
		g, v := dy[:n], x[:n]
		dy, x = dy[n:], x[n:]
		var a, p [chains]float32
		for len(g) >= chains && len(v) >= chains {
			gc, vc := g[:chains], v[:chains]
			for j := range chains {
				a[j] += gc[j]
				p[j] += float32(gc[j] * (vc[j] - m))
			}
			g, v = g[chains:], v[chains:]
		}
		for i := range g {
			a[0] += g[i]
			p[0] += float32(g[i] * (v[i] - m))
		}
		sdy += float64(chainTotal(&a))
		sdyx += float64(chainTotal(&p))
	}
	return sdy, sdyx
}

// Affine sets dst[i] = (x[i]−m)·a + b. dst may alias x.
func Affine(dst, x []float32, m, a, b float32) {
	checkLen("Affine", len(dst), len(x))
	if haveCKernels && len(dst) >= cKernelMin {
		affineC(dst, x[:len(dst)], m, a, b)
		return
	}
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = float32((v-m)*a) + b
	}
}

// Combine sets dst[i] = a·dy[i] + b·(x[i]−m) + c. dst may alias dy or x.
func Combine(dst, dy, x []float32, m, a, b, c float32) {
	checkLen("Combine", len(dst), len(dy), len(x))
	if haveCKernels && len(dst) >= cKernelMin {
		combineC(dst, dy, x, m, a, b, c)
		return
	}
	dy, x = dy[:len(dst)], x[:len(dst)]
	for i, g := range dy {
		dst[i] = float32(a*g) + float32(b*(x[i]-m)) + c
	}
}

// ReLU sets dst[i] = max(x[i], 0). dst may alias x.
func ReLU(dst, x []float32) {
	checkLen("ReLU", len(dst), len(x))
	if haveCKernels && len(dst) >= cKernelMin {
		reluC(dst, x)
		return
	}
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = max(v, 0)
	}
}

// positive is all ones when y > 0 (NaN excluded) and 0 otherwise, computed
// without a branch (the sign of activations is unpredictable).
func positive(y float32) uint32 {
	// y ∈ (0, +Inf] ⇔ bits−1 < 0x7f800000 as unsigned: the difference,
	// taken in 64 bits, is negative exactly then.
	return uint32(int64(uint64(math.Float32bits(y)-1)-0x7f800000) >> 63)
}

// ReLUMask sets dst[i] = dy[i] where y[i] > 0 and 0 elsewhere: the
// gradient of ReLU given its output y. dst may alias dy.
func ReLUMask(dst, dy, y []float32) {
	checkLen("ReLUMask", len(dst), len(dy), len(y))
	if haveCKernels && len(dst) >= cKernelMin {
		reluMaskC(dst, dy, y)
		return
	}
	dy, y = dy[:len(dst)], y[:len(dst)]
	for i, g := range dy {
		dst[i] = math.Float32frombits(math.Float32bits(g) & positive(y[i]))
	}
}

// Add sets dst[i] = a[i] + b[i]. dst may alias a or b.
func Add(dst, a, b []float32) {
	checkLen("Add", len(dst), len(a), len(b))
	if haveCKernels && len(dst) >= cKernelMin {
		addC(dst, a, b)
		return
	}
	a, b = a[:len(dst)], b[:len(dst)]
	for i, v := range a {
		dst[i] = v + b[i]
	}
}

// AddReLU sets dst[i] = max(a[i] + b[i], 0). dst may alias a or b.
func AddReLU(dst, a, b []float32) {
	checkLen("AddReLU", len(dst), len(a), len(b))
	if haveCKernels && len(dst) >= cKernelMin {
		addReLUC(dst, a, b)
		return
	}
	a, b = a[:len(dst)], b[:len(dst)]
	for i, v := range a {
		dst[i] = max(v+b[i], 0)
	}
}

// Tanh sets dst[i] = tanh(x[i]) with a relative error below 2.5e-7 (about
// 2 ulp of float32; TestTanhAccuracy checks it against math.Tanh). dst may
// alias x.
//
// tanh x = e/(e+2) with e = exp(2x)−1 computed as 2^k·(exp(r)−1) + (2^k−1),
// 2x = k·ln2 + r, |r| ≤ ln2/2, exp(r)−1 by its Taylor series to degree 7
// (truncation error < 1.6e-8 relative), all in float64: no cancellation
// near 0 (k = 0 there, so e = exp(r)−1 as computed), one division, and no
// branch but the clamp of |x| to 10, beyond which tanh rounds to ±1 in
// float32. It is about 3× faster than float32(math.Tanh(float64(x))).
func Tanh(dst, x []float32) {
	checkLen("Tanh", len(dst), len(x))
	if haveCKernels && len(dst) >= cKernelMin {
		tanhC(dst, x)
		return
	}
	x = x[:len(dst)]
	const (
		log2e = 1.4426950408889634
		ln2   = 0.6931471805599453
		round = 6755399441055744.0 // 1.5·2⁵²: adding and subtracting it rounds to an integer
		c2    = 1.0 / 2
		c3    = 1.0 / 6
		c4    = 1.0 / 24
		c5    = 1.0 / 120
		c6    = 1.0 / 720
		c7    = 1.0 / 5040
	)
	for i, v := range x {
		y := 2 * float64(v)
		if y > 20 {
			y = 20
		}
		if y < -20 {
			y = -20
		}
		// Every product rounded on its own (explicit conversions: no
		// fused multiply-add at any GOAMD64), as the C loop does.
		kf := (float64(y*log2e) + round) - round
		r := y - float64(kf*ln2)
		// exp(r)−1 = r·(1 + c2 r + … + c7 r⁶), Estrin's scheme (short dependency chains).
		r2 := r * r
		r4 := r2 * r2
		q := (1 + float64(c2*r)) + float64(r2*(c3+float64(c4*r))) + float64(r4*((c5+float64(c6*r))+float64(r2*c7)))
		p := r * q
		s := math.Float64frombits(uint64(int64(kf)+1023) << 52)
		e := float64(s*p) + (s - 1)
		dst[i] = float32(math.Copysign(e/(e+2), float64(v)))
	}
}

// TanhBackward sets dst[i] = dy[i]·(1 − y[i]²), the gradient of tanh given
// its output y. dst may alias dy.
func TanhBackward(dst, dy, y []float32) {
	checkLen("TanhBackward", len(dst), len(dy), len(y))
	if haveCKernels && len(dst) >= cKernelMin {
		tanhBackwardC(dst, dy, y)
		return
	}
	dy, y = dy[:len(dst)], y[:len(dst)]
	for i, g := range dy {
		t := y[i]
		dst[i] = g * (1 - float32(t*t))
	}
}

// SumSquares returns Σ x[i]² with each square taken in float64 (exact) and
// the terms added in float64, in 16 chains added by a fixed tree (any
// order of the additions is within the same γ⁶⁴ bound, which is what the
// per-example norm bounds assume).
func SumSquares(x []float32) float64 {
	if haveCKernels && len(x) >= cKernelMin {
		return sumSquaresC(x)
	}
	return sumSquaresGo(x)
}

func sumSquaresGo(x []float32) float64 {
	var a [chains]float64
	for len(x) >= chains {
		c := x[:chains]
		for j := range chains {
			v := float64(c[j])
			a[j] += float64(v * v)
		}
		x = x[chains:]
	}
	for _, v := range x {
		a[0] += float64(float64(v) * float64(v))
	}
	for w := chains / 2; w >= 1; w /= 2 {
		for j := 0; j < w; j++ {
			a[j] += a[j+w]
		}
	}
	return a[0]
}

// Axpy sets dst[i] += a·x[i].
func Axpy(dst []float32, a float32, x []float32) {
	checkLen("Axpy", len(dst), len(x))
	if haveCKernels && len(dst) >= cKernelMin {
		axpyC(dst, a, x)
		return
	}
	for i, v := range x {
		dst[i] += float32(a * v)
	}
}

// WSStats are the float64 sums over one gradient row g and the matching
// row w of standardised weights that bound the norm of the row's
// weight-standardisation image without forming it (nn's stored rule).
type WSStats struct {
	SumSq  float64 // Σ g²
	Sum    float64 // Σ g
	SumAbs float64 // Σ |g|
	Dot    float64 // Σ g·w
	DotAbs float64 // Σ |g·w|
}

// WSRowStats returns the WSStats of g and w. Every term is exact in float64
// (a product of two float32 values fits one); the terms are added in 16
// chains each, by a fixed tree, so any rounding is within the γ⁶⁴ bound of a
// sum of len(g) terms in any order.
func WSRowStats(g, w []float32) WSStats {
	checkLen("WSRowStats", len(g), len(w))
	if haveCKernels && len(g) >= cKernelMin {
		return wsRowStatsC(g, w)
	}
	return wsRowStatsGo(g, w)
}

func wsRowStatsGo(g, w []float32) WSStats {
	var a, b, c, d, e [chains]float64
	n := len(g)
	i := 0
	for ; i+chains <= n; i += chains {
		gc, wc := g[i:i+chains], w[i:i+chains]
		for j := range chains {
			v := float64(gc[j])
			p := float64(v * float64(wc[j]))
			a[j] += float64(v * v)
			b[j] += v
			c[j] += math.Abs(v)
			d[j] += p
			e[j] += math.Abs(p)
		}
	}
	for ; i < n; i++ {
		v := float64(g[i])
		p := float64(v * float64(w[i]))
		a[0] += float64(v * v)
		b[0] += v
		c[0] += math.Abs(v)
		d[0] += p
		e[0] += math.Abs(p)
	}
	for s := chains / 2; s >= 1; s /= 2 {
		for j := 0; j < s; j++ {
			a[j] += a[j+s]
			b[j] += b[j+s]
			c[j] += c[j+s]
			d[j] += d[j+s]
			e[j] += e[j+s]
		}
	}
	return WSStats{SumSq: a[0], Sum: b[0], SumAbs: c[0], Dot: d[0], DotAbs: e[0]}
}

// WSRow sets dst (add: adds to dst) to the weight-standardisation Jacobian
// applied to the gradient row g of the standardised weights w:
// (g − mean(g) − w·(g·w)/n)·inv, n = len(g), computed in float64 with the
// sums Σg and Σg·w in 16 chains added by a fixed tree; dst is rounded to
// float32 once per element.
func WSRow(dst, g, w []float32, inv float64, add bool) {
	checkLen("WSRow", len(dst), len(g), len(w))
	if haveCKernels && len(dst) >= cKernelMin {
		wsRowC(dst, g, w, inv, add)
		return
	}
	wsRowGo(dst, g, w, inv, add)
}

func wsRowGo(dst, g, w []float32, inv float64, add bool) {
	// Σg and Σg·w: the chains and tree of WSRowStats.
	st := wsRowStatsGo(g, w)
	n := len(g)
	mean, proj := st.Sum/float64(n), st.Dot/float64(n)
	for k, v := range g {
		r := float32((float64(v) - mean - float64(float64(w[k])*proj)) * inv)
		if add {
			dst[k] += r
		} else {
			dst[k] = r
		}
	}
}

// WSGhostSums are the float64 sums over one output channel o of one
// example's output gradients g_os (its k·t positions s) that nn's ghost
// rule under weight standardisation needs for σ_o = Σ_s g_os·colsum_s and
// ρ_o = Σ_s g_os·(z_os − b_o), with the magnitude sums of their error
// bounds.
type WSGhostSums struct {
	Sig    float64 // Σ g·colsum
	SigAbs float64 // Σ |g·colsum|
	SigErr float64 // Σ |g|·colabs
	Rho    float64 // Σ g·(z − b)
	RhoAbs float64 // Σ |g·(z − b)|
	RhoErr float64 // Σ |g|·e_z, e_z = scale·alpha + zAbs [+ cy·|z| + cz·|z − b|]
}

// WSGhostInput is one example's data for WSGhostRowSums: p output rows of k
// segments of t positions each. Row o's segment a reads DY[o·LDY + a·t:][:t]
// and Z[a·ZSeg + o·t:][:t] (the layer's output, bias included); position s
// = a·t + q of the example reads ColSum[s], ColAbs[s] and Alpha[s] (kt
// values each). Scale[o] multiplies Alpha in row o's e_z; Bias (nil: no
// bias, b = 0 and no bias terms in e_z) holds b_o; ZAbs, CY and CZ are the
// constants of e_z.
type WSGhostInput struct {
	DY             []float32
	LDY            int
	Z              []float32
	ZSeg           int
	P, K, T        int
	ColSum, ColAbs []float64
	Alpha, Scale   []float64
	Bias           []float32
	ZAbs, CY, CZ   float64
}

// WSGhostRowSums sets dst[o] to row o's WSGhostSums for o < in.P. Each sum
// is taken per segment in 16 float64 chains (chain j takes positions j,
// j+16, …; the tail goes to chain 0) added by a fixed tree, the segments'
// totals added in order; every product rounds once. The sums are within
// the γ⁶⁴ bound of a sum of k·t terms in any order; the vectorised C
// version gives the same bits.
func WSGhostRowSums(dst []WSGhostSums, in WSGhostInput) {
	p, k, t := in.P, in.K, in.T
	if p < 0 || k < 0 || t < 0 || len(dst) < p {
		shapePanic("WSGhostRowSums", "dst has %d rows, want p=%d (k=%d, t=%d non-negative)", len(dst), p, k, t)
	}
	if p == 0 || k == 0 || t == 0 {
		clear(dst[:p])
		return
	}
	kt := k * t
	if len(in.DY) < (p-1)*in.LDY+kt || in.LDY < kt || len(in.Z) < (k-1)*in.ZSeg+p*t || in.ZSeg < p*t ||
		len(in.ColSum) < kt || len(in.ColAbs) < kt || len(in.Alpha) < kt || len(in.Scale) < p ||
		(in.Bias != nil && len(in.Bias) < p) {
		shapePanic("WSGhostRowSums", "inputs too short for p=%d, k=%d, t=%d (ldy=%d, zseg=%d)", p, k, t, in.LDY, in.ZSeg)
	}
	if haveCKernels && p*kt >= cKernelMin {
		wsGhostRowSumsC(dst, &in)
		return
	}
	wsGhostRowSumsGo(dst, &in)
}

func wsGhostRowSumsGo(dst []WSGhostSums, in *WSGhostInput) {
	t := in.T
	for o := 0; o < in.P; o++ {
		var b float64
		if in.Bias != nil {
			b = float64(in.Bias[o])
		}
		sc := in.Scale[o]
		var tot WSGhostSums
		for a := 0; a < in.K; a++ {
			g := in.DY[o*in.LDY+a*t : o*in.LDY+(a+1)*t]
			z := in.Z[a*in.ZSeg+o*t : a*in.ZSeg+(o+1)*t]
			cs, ca, al := in.ColSum[a*t:(a+1)*t], in.ColAbs[a*t:(a+1)*t], in.Alpha[a*t:(a+1)*t]
			var c [6][chains]float64
			full := t - t%chains
			for q := range t {
				j := q % chains
				if q >= full {
					j = 0
				}
				gv := float64(g[q])
				ag := math.Abs(gv)
				s := float64(gv * cs[q])
				c[0][j] += s
				c[1][j] += math.Abs(s)
				c[2][j] += float64(ag * ca[q])
				y := float64(z[q])
				zd := y - b
				r := float64(gv * zd)
				c[3][j] += r
				c[4][j] += math.Abs(r)
				ez := float64(sc*al[q]) + in.ZAbs
				if in.Bias != nil {
					ez += float64(in.CY * math.Abs(y))
					ez += float64(in.CZ * math.Abs(zd))
				}
				c[5][j] += float64(ag * ez)
			}
			for s := chains / 2; s >= 1; s /= 2 {
				for i := range c {
					for j := 0; j < s; j++ {
						c[i][j] += c[i][j+s]
					}
				}
			}
			tot.Sig += c[0][0]
			tot.SigAbs += c[1][0]
			tot.SigErr += c[2][0]
			tot.Rho += c[3][0]
			tot.RhoAbs += c[4][0]
			tot.RhoErr += c[5][0]
		}
		dst[o] = tot
	}
}

// WSBlockedRowStats sets dst[o], for each row o < l.Rows, to the WSStats of
// row o of g and of w, two weight arrays in the row-blocked layout l
// (ConvPlan.WeightGradLayout): a row's terms are its lane's, added in
// order of position within the block, one chain per row (so each sum is
// within γ⁶⁴_{l.Chunk/l.Block} of its magnitude sum; zero padding adds
// exact zeros). The vectorised C version gives the same bits.
func WSBlockedRowStats(dst []WSStats, g, w []float32, l BlockedLayout) {
	nb := (l.Rows + l.Block - 1) / max(l.Block, 1)
	if l.Rows < 1 || l.Block < 1 || l.Chunk < l.Block || l.Chunk%l.Block != 0 || l.Len != nb*l.Chunk {
		shapePanic("WSBlockedRowStats", "invalid layout %+v", l)
	}
	if len(dst) < l.Rows || len(g) < l.Len || len(w) < l.Len {
		shapePanic("WSBlockedRowStats", "dst %d rows, g %d and w %d floats; want %d rows and %d floats", len(dst), len(g), len(w), l.Rows, l.Len)
	}
	if haveCKernels && (l.Block == 16 || l.Block == 8) {
		wsBlockedRowStatsC(dst, g, w, l)
		return
	}
	wsBlockedRowStatsGo(dst, g, w, l)
}

func wsBlockedRowStatsGo(dst []WSStats, g, w []float32, l BlockedLayout) {
	b := l.Block
	acc := make([]WSStats, b)
	for ob := 0; ob*b < l.Rows; ob++ {
		clear(acc)
		gb, wb := g[ob*l.Chunk:(ob+1)*l.Chunk], w[ob*l.Chunk:(ob+1)*l.Chunk]
		for e := 0; e < l.Chunk; e += b {
			for lane := range b {
				v := float64(gb[e+lane])
				pv := float64(v * float64(wb[e+lane]))
				a := &acc[lane]
				a.SumSq += float64(v * v)
				a.Sum += v
				a.SumAbs += math.Abs(v)
				a.Dot += pv
				a.DotAbs += math.Abs(pv)
			}
		}
		copy(dst[ob*b:min(l.Rows, (ob+1)*b)], acc)
	}
}
