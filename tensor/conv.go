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
type ConvShape struct {
	N, Cin, H, W, Cout, K, Stride, Pad int
	CoutTotal                          int // 0: Cout
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
