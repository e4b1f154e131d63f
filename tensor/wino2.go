package tensor

import "sync"

// WinogradWeightGrad computes the weight gradient of a 3×3 convolution at
// stride 1 with one pixel of padding, summed over the N images of a call,
// by Winograd's F(2×2, 3×3) (Lavin and Gray 2016): each 2×2 block of
// outputs and each channel pair take 16 products instead of 36, after
// linear transforms of the 4×4 input tile (entries 0, ±1) and the 2×2
// output-gradient tile (0, ±1), and a transform of the 16 sums back to
// the 3×3 gradient (entries 0, ±½, 1). It serves the stored per-example
// rule, whose calls have one example's rows: oneDNN's Winograd kernel
// computes F(4×4, 3×3) with a per-call cost that one example's few tiles
// do not repay, and its direct kernel does all 36 products.
//
// The gradient is left in the kernel's own layout (Layout): row o (output
// channel) is one contiguous run of 9·Cin floats ordered [kh][kw][i], the
// rows in order; BlockWeightGrad and UnblockWeightGrad convert from and to
// plain OIHW (exact copies). Like every Winograd form it is exact in real
// arithmetic and rounds differently from a direct sum (its float32 error
// is not covered by the γ_d bound of a d-term dot product); the stored
// rule takes the norm of the array it stores and adds that same array, so
// it needs no such bound.
//
// It runs on the calling goroutine only, and is safe for concurrent use.
type WinogradWeightGrad struct {
	n, cin, h, w, cout int
	bufLen             int
}

// NewWinogradWeightGrad returns the kernel for calls of shape s, or nil
// where it does not apply: s not a 3×3 stride-1 convolution with one pixel
// of padding, channel counts not multiples of 16, a partial output-channel
// block (CoutTotal), or no AVX-512 C kernel in this build or on this CPU.
func NewWinogradWeightGrad(s ConvShape) *WinogradWeightGrad {
	if s.K != 3 || s.Stride != 1 || s.Pad != 1 || s.Cin%16 != 0 || s.Cout%16 != 0 || s.Cin < 16 || s.Cout < 16 ||
		s.N < 1 || s.H < 1 || s.W < 1 || (s.CoutTotal != 0 && s.CoutTotal != s.Cout) || !wino2Supported() {
		return nil
	}
	return &WinogradWeightGrad{n: s.N, cin: s.Cin, h: s.H, w: s.W, cout: s.Cout, bufLen: wino2BufLen(s.N, s.Cin, s.H, s.W, s.Cout)}
}

// Shape is the call shape the kernel was made for.
func (k *WinogradWeightGrad) Shape() ConvShape {
	return ConvShape{N: k.n, Cin: k.cin, H: k.h, W: k.w, Cout: k.cout, K: 3, Stride: 1, Pad: 1}
}

// Layout is the layout of the gradients BackwardWeightsBlocked writes:
// Rows = Cout rows of Chunk = 9·Cin floats each (Block 1: a row is one
// contiguous run, in the order [kh][kw][i]).
func (k *WinogradWeightGrad) Layout() BlockedLayout {
	d := 9 * k.cin
	return BlockedLayout{Rows: k.cout, Block: 1, Chunk: d, Len: k.cout * d}
}

var wino2Bufs = sync.Pool{New: func() any { return new([]float32) }}

// BackwardWeightsBlocked sets dw (Layout().Len floats) to Σ over the N
// images of the weight gradient for inputs x (N×Cin×H×W) and output
// gradients dy (N×Cout×H×W), in Layout. x and dy are not modified.
func (k *WinogradWeightGrad) BackwardWeightsBlocked(dw, x, dy []float32) {
	checkWino2Len("dw", len(dw), k.cout*9*k.cin)
	checkWino2Len("x", len(x), k.n*k.cin*k.h*k.w)
	checkWino2Len("dy", len(dy), k.n*k.cout*k.h*k.w)
	bp := wino2Bufs.Get().(*[]float32)
	if cap(*bp) < k.bufLen {
		*bp = make([]float32, k.bufLen)
	}
	wino2C(dw, x, dy, k.n, k.cin, k.h, k.w, k.cout, (*bp)[:k.bufLen])
	wino2Bufs.Put(bp)
}

// BlockWeightGrad copies plain OIHW weights w (Cout×Cin×3×3) into dst in
// Layout; UnblockWeightGrad copies back. Both are exact copies.
func (k *WinogradWeightGrad) BlockWeightGrad(dst, w []float32) { k.permute(dst, w, false) }

// UnblockWeightGrad copies src, in Layout, to dst in plain OIHW.
func (k *WinogradWeightGrad) UnblockWeightGrad(dst, src []float32) { k.permute(dst, src, true) }

func (k *WinogradWeightGrad) permute(dst, src []float32, toPlain bool) {
	n := k.cout * 9 * k.cin
	checkWino2Len("dst", len(dst), n)
	checkWino2Len("src", len(src), n)
	for o := 0; o < k.cout; o++ {
		row := o * 9 * k.cin
		for i := 0; i < k.cin; i++ {
			for e := 0; e < 9; e++ {
				plain, own := row+i*9+e, row+e*k.cin+i
				if toPlain {
					dst[plain] = src[own]
				} else {
					dst[own] = src[plain]
				}
			}
		}
	}
}

func checkWino2Len(what string, got, want int) {
	if got != want {
		shapePanic("WinogradWeightGrad", "%s has %d floats, want %d", what, got, want)
	}
}
