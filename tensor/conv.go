package tensor

import (
	"os"
	"sync"
)

// ConvShape is the shape of one 2-d convolution call: N examples of Cin×H×W
// (NCHW) convolved with Cout×Cin×K×K weights (OIHW) at the given stride and
// zero padding, giving N×Cout×Hout×Wout.
//
// CoutTotal, when above Cout, makes the plan compute Cout consecutive
// channels of an output with CoutTotal channels: its output (or output
// gradient) slices start at the first of those channels of example 0 and
// keep the full tensor's example stride, so that the weight gradient of a
// block of output channels can be computed apart from the others.
//
// Winograd names the products the plan may compute by Winograd's minimal
// filtering F(4×4, 3×3) instead of the direct convolution; each of them
// does where WinogradOps says that is faster for the shape.
type ConvShape struct {
	N, Cin, H, W, Cout, K, Stride, Pad int
	CoutTotal                          int         // 0: Cout
	Winograd                           WinogradOps // 0: direct only
}

// WinogradOps is a set of a convolution's three products.
//
// Winograd's F(4×4, 3×3) (Lavin and Gray 2016) computes a 3×3 convolution
// over 6×6 input tiles with 36 multiplications per 4×4 outputs and input
// channel instead of 144, after linear transforms of the tiles, the weights
// and the results. It is exact in real arithmetic; in float32 its rounding
// error is larger than the direct sum's (the transforms' constants go up to
// 8 and their outputs are sums of up to 36 terms), and it is not covered by
// the γ_d bound of a d-term dot product. A caller whose correctness rests on
// that bound for a product (weight standardisation's ghost correction bounds
// the forward output's error by it; nn/conv_ws.go) must leave that product
// out.
type WinogradOps uint8

const (
	WinogradForward WinogradOps = 1 << iota
	WinogradBackwardData
	WinogradBackwardWeights
	WinogradAll = WinogradForward | WinogradBackwardData | WinogradBackwardWeights
)

// WinogradOps returns the products of s that its plan computes by Winograd:
// those of s.Winograd that the shape rule below finds faster. The rule
// depends on the shape alone (so do the results): 3×3 kernels at stride 1
// with one pixel of padding, channel counts that are multiples of 16 (the
// kernels' vector width), and enough output positions per call for the
// per-call transform of the weights (∝ Cin·Cout) to pay off against the
// direct kernel: N·Hout·Wout ≥ max(784, 6·max(Cin, Cout)) for forward and
// backward-data, ≥ 196 with at most 256 channels for backward-weights.
// Measured on AVX-512 (BENCHMARKS.md, "Winograd", per call with reorders):
// forward 1.3–1.7× and backward-data 1.3–1.8× the direct kernel at 56²,
// 28², 32² and 16² (eight examples), backward-weights 1.1–2.1× down to 8²
// with 256 channels; slower below those sizes and at 512 channels. Where oneDNN has no Winograd kernel for the CPU
// (no AVX-512) the plan uses the direct one.
func (s ConvShape) WinogradOps() WinogradOps {
	if s.Winograd == 0 || s.K != 3 || s.Stride != 1 || s.Pad != 1 || s.Cin%16 != 0 || s.Cout%16 != 0 {
		return 0
	}
	oh, ow := s.Out()
	cols, ch := s.N*oh*ow, max(s.Cin, s.Cout)
	var ops WinogradOps
	if cols >= max(784, 6*ch) {
		ops |= WinogradForward | WinogradBackwardData
	}
	if cols >= 196 && ch <= 256 {
		ops |= WinogradBackwardWeights
	}
	return ops & s.Winograd
}

func (s ConvShape) coutTotal() int { return max(s.Cout, s.CoutTotal) }

// Out returns the output height and width.
func (s ConvShape) Out() (int, int) {
	return ConvOut(s.H, s.K, s.Stride, s.Pad), ConvOut(s.W, s.K, s.Stride, s.Pad)
}

// fastConv is whether NewConvPlan returns the compiled-in convolution
// kernels (oneDNN) or nil (callers then use im2col and GEMM). The
// environment variable DPTRAIN_CONV=im2col turns them off.
var (
	fastConvMu sync.Mutex
	fastConv   = os.Getenv("DPTRAIN_CONV") != "im2col"
)

// UseConvKernels turns the compiled-in convolution kernels on or off for
// plans made afterwards and returns the previous setting (for tests and
// benchmarks that compare them with im2col and GEMM).
func UseConvKernels(on bool) (was bool) {
	fastConvMu.Lock()
	defer fastConvMu.Unlock()
	was, fastConv = fastConv, on
	return was
}

func convKernelsOn() bool {
	fastConvMu.Lock()
	defer fastConvMu.Unlock()
	return fastConv && ConvKernels != "im2col"
}

// ConvWeights holds a layer's OIHW weights for ConvPlans, with the copies
// reordered into the layouts the plans' kernels use, made on first use
// after each Set and shared by plans that agree on the layout.
type ConvWeights struct {
	mu       sync.Mutex
	w        []float32
	version  uint64
	prepared []preparedWeights
}

// Set makes w (Cout·Cin·K·K floats, OIHW) the weights of the following
// calls. w must not change until the next Set.
func (cw *ConvWeights) Set(w []float32) {
	cw.mu.Lock()
	cw.w = w
	cw.version++
	cw.mu.Unlock()
}

// convWorkspaces is a free list of workspace buffers for ConvPlan calls:
// one per concurrent call, reused across layers.
var convWorkspaces struct {
	mu   sync.Mutex
	free [][]byte
}

func acquireWorkspace(n int) []byte {
	convWorkspaces.mu.Lock()
	var b []byte
	if k := len(convWorkspaces.free); k > 0 {
		b = convWorkspaces.free[k-1]
		convWorkspaces.free = convWorkspaces.free[:k-1]
	}
	convWorkspaces.mu.Unlock()
	n = max(n, 1)
	if cap(b) < n {
		b = make([]byte, n)
	}
	return b[:n]
}

func releaseWorkspace(b []byte) {
	convWorkspaces.mu.Lock()
	if len(convWorkspaces.free) < 16 {
		convWorkspaces.free = append(convWorkspaces.free, b)
	}
	convWorkspaces.mu.Unlock()
}

// BlockedLayout is a row-blocked layout of a Rows×D weight array (Rows
// output channels): rows in blocks of Block, row o in block o/Block at lane
// o mod Block; each block is one contiguous run of Chunk floats in which
// element e belongs to lane e mod Block (its other indices, zero-padded,
// in an order of the kernel's choosing); Len = Chunk·⌈Rows/Block⌉ floats in
// all. A per-row sum over such an array is a per-lane sum (WSBlockedRowStats).
type BlockedLayout struct {
	Rows, Block, Chunk, Len int
}
