//go:build cgo && !noblas && !nodnnl

package tensor

/*
#cgo LDFLAGS: -ldnnl -lgomp
#include <stdlib.h>
#include "conv_dnnl.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"
)

// ConvKernels names the convolution kernels compiled in: "onednn" (Intel
// oneDNN's JIT kernels for this CPU, libdnnl) in this build.
const ConvKernels = "onednn"

const (
	opForward = iota
	opBackwardData
	opBackwardWeights
)

const errLen = 256

func init() {
	var buf [errLen]C.char
	if C.dp_conv_init(&buf[0], errLen) != 0 {
		panic("tensor: oneDNN engine: " + C.GoString(&buf[0]))
	}
}

// ConvPlan is a prepared convolution of one shape, run by oneDNN's kernels
// on the calling goroutine alone. Its results depend only on the shape and
// the inputs (not on other goroutines or the thread count). A plan may be
// used by several goroutines at once.
type ConvPlan struct {
	s       ConvShape
	c       *C.dp_conv
	ws      int // workspace bytes per call
	wgrad   BlockedLayout
	blocked bool // backward-weights' own layout of dw is row-blocked (wgrad)
}

type preparedWeights struct {
	plan    *ConvPlan
	op      int
	version uint64
	buf     []byte
}

// NewConvPlan returns a plan for shape s, or nil (and no error) when the
// convolution kernels are turned off (UseConvKernels, DPTRAIN_CONV=im2col).
// An error means the kernels cannot run this shape; callers then use im2col
// and GEMM.
func NewConvPlan(s ConvShape) (*ConvPlan, error) {
	if !convKernelsOn() {
		return nil, nil
	}
	oh, ow := s.Out()
	if s.N < 1 || s.Cin < 1 || s.Cout < 1 || s.CoutTotal < 0 || s.K < 1 || s.Stride < 1 || s.Pad < 0 || oh < 1 || ow < 1 {
		shapePanic("NewConvPlan", "invalid shape %+v", s)
	}
	var buf [errLen]C.char
	c := C.dp_conv_new(C.int(s.N), C.int(s.Cin), C.int(s.H), C.int(s.W), C.int(s.Cout), C.int(s.coutTotal()), C.int(s.K), C.int(s.Stride), C.int(s.Pad), C.int(s.WinogradOps()), &buf[0], errLen)
	if c == nil {
		return nil, fmt.Errorf("oneDNN convolution %+v: %s", s, C.GoString(&buf[0]))
	}
	p := &ConvPlan{s: s, c: c, ws: int(C.dp_conv_ws_bytes(c))}
	var blk, chunk, total C.long
	if C.dp_conv_wgrad_layout(c, &blk, &chunk, &total) != 0 {
		p.wgrad, p.blocked = BlockedLayout{Rows: s.Cout, Block: int(blk), Chunk: int(chunk), Len: int(total)}, true
	}
	runtime.AddCleanup(p, func(c *C.dp_conv) { C.dp_conv_free(c) }, c)
	return p, nil
}

// Shape returns the plan's shape.
func (p *ConvPlan) Shape() ConvShape { return p.s }

// Impl names oneDNN's implementations of forward, backward-data and
// backward-weights (e.g. "jit:avx512_core", or "jit_wino_4x3:avx512_core"
// for a product computed by Winograd).
func (p *ConvPlan) Impl() string {
	s := ""
	for op := range 3 {
		if op > 0 {
			s += " / "
		}
		s += C.GoString(C.dp_conv_impl(p.c, C.int(op)))
	}
	defer runtime.KeepAlive(p)
	return s
}

func (p *ConvPlan) sizes() (x, w, y int) {
	oh, ow := p.s.Out()
	t := oh * ow
	return p.s.N * p.s.Cin * p.s.H * p.s.W, p.s.Cout * p.s.Cin * p.s.K * p.s.K, (p.s.N-1)*p.s.coutTotal()*t + p.s.Cout*t
}

func checkConvLen(op string, name string, got, want int) {
	if got < want {
		shapePanic("ConvPlan."+op, "%s has %d elements, want %d", name, got, want)
	}
}

// weights returns the weights of cw in the layout op uses, and whether they
// are already in it (false: plain OIHW, reordered by the call).
func (p *ConvPlan) weights(cw *ConvWeights, op int) (unsafe.Pointer, bool) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if len(cw.w) == 0 {
		shapePanic("ConvPlan", "ConvWeights without Set")
	}
	n := int(C.dp_conv_wei_bytes(p.c, C.int(op)))
	if n == 0 {
		return unsafe.Pointer(&cw.w[0]), false
	}
	var spare *preparedWeights
	for i := range cw.prepared {
		e := &cw.prepared[i]
		if e.plan == p && e.op == op || C.dp_conv_same_weights(p.c, e.plan.c, C.int(op), C.int(e.op)) != 0 {
			if e.version != cw.version {
				spare = e
				break
			}
			return unsafe.Pointer(&e.buf[0]), true
		}
	}
	if spare == nil {
		cw.prepared = append(cw.prepared, preparedWeights{})
		spare = &cw.prepared[len(cw.prepared)-1]
	}
	if len(spare.buf) < n {
		spare.buf = make([]byte, n)
	}
	spare.plan, spare.op, spare.version = p, op, cw.version
	var buf [errLen]C.char
	if C.dp_conv_prepare(p.c, C.int(op), (*C.float)(unsafe.Pointer(&cw.w[0])), unsafe.Pointer(&spare.buf[0]), &buf[0], errLen) != 0 {
		panic("tensor: oneDNN weight reorder: " + C.GoString(&buf[0]))
	}
	return unsafe.Pointer(&spare.buf[0]), true
}

func (p *ConvPlan) run(op int, a unsafe.Pointer, b unsafe.Pointer, bReady bool, out unsafe.Pointer) {
	p.runKeep(op, a, b, bReady, out, false)
}

func (p *ConvPlan) runKeep(op int, a unsafe.Pointer, b unsafe.Pointer, bReady bool, out unsafe.Pointer, keep bool) {
	ws := acquireWorkspace(p.ws)
	var buf [errLen]C.char
	ready := C.int(0)
	if bReady {
		ready = 1
	}
	k := C.int(0)
	if keep {
		k = 1
	}
	rc := C.dp_conv_run(p.c, C.int(op), (*C.float)(a), (*C.float)(b), ready, (*C.float)(out), k, unsafe.Pointer(&ws[0]), &buf[0], errLen)
	releaseWorkspace(ws)
	runtime.KeepAlive(p)
	if rc != 0 {
		panic("tensor: oneDNN convolution: " + C.GoString(&buf[0]))
	}
}

// Forward sets y (N×Cout×Hout×Wout) to the convolution of x (N×Cin×H×W)
// with the weights of w (no bias).
func (p *ConvPlan) Forward(y, x []float32, w *ConvWeights) {
	nx, _, ny := p.sizes()
	checkConvLen("Forward", "x", len(x), nx)
	checkConvLen("Forward", "y", len(y), ny)
	wp, ready := p.weights(w, opForward)
	p.run(opForward, unsafe.Pointer(&x[0]), wp, ready, unsafe.Pointer(&y[0]))
	runtime.KeepAlive(w)
}

// BackwardData sets dx (N×Cin×H×W) to the gradient of the convolution with
// respect to its input, given the output gradient dy and the weights w.
func (p *ConvPlan) BackwardData(dx, dy []float32, w *ConvWeights) {
	nx, _, ny := p.sizes()
	checkConvLen("BackwardData", "dx", len(dx), nx)
	checkConvLen("BackwardData", "dy", len(dy), ny)
	wp, ready := p.weights(w, opBackwardData)
	p.run(opBackwardData, unsafe.Pointer(&dy[0]), wp, ready, unsafe.Pointer(&dx[0]))
	runtime.KeepAlive(w)
}

// BackwardWeights sets dw (Cout×Cin×K×K) to Σ_n of the weight gradients of
// the N examples, given their inputs x and output gradients dy.
func (p *ConvPlan) BackwardWeights(dw, x, dy []float32) {
	nx, nw, ny := p.sizes()
	checkConvLen("BackwardWeights", "x", len(x), nx)
	checkConvLen("BackwardWeights", "dw", len(dw), nw)
	checkConvLen("BackwardWeights", "dy", len(dy), ny)
	p.run(opBackwardWeights, unsafe.Pointer(&x[0]), unsafe.Pointer(&dy[0]), false, unsafe.Pointer(&dw[0]))
}

// WeightGradLayout returns the layout in which oneDNN's backward-weights
// kernel produces dw, when it is row-blocked (see BlockedLayout); ok is
// false for any other layout (BackwardWeightsBlocked then cannot be used).
func (p *ConvPlan) WeightGradLayout() (l BlockedLayout, ok bool) { return p.wgrad, p.blocked }

// BackwardWeightsBlocked is BackwardWeights with dw (WeightGradLayout().Len
// floats) left in the kernel's own row-blocked layout: the same values as
// BackwardWeights gives, permuted (plus zero padding), without the reorder.
func (p *ConvPlan) BackwardWeightsBlocked(dw, x, dy []float32) {
	if !p.blocked {
		shapePanic("ConvPlan.BackwardWeightsBlocked", "the plan's weight-gradient layout is not row-blocked")
	}
	nx, _, ny := p.sizes()
	checkConvLen("BackwardWeightsBlocked", "x", len(x), nx)
	checkConvLen("BackwardWeightsBlocked", "dw", len(dw), p.wgrad.Len)
	checkConvLen("BackwardWeightsBlocked", "dy", len(dy), ny)
	p.runKeep(opBackwardWeights, unsafe.Pointer(&x[0]), unsafe.Pointer(&dy[0]), false, unsafe.Pointer(&dw[0]), true)
}

// BlockWeightGrad copies plain OIHW weights w into dst in the layout of
// WeightGradLayout (padding zero); UnblockWeightGrad copies back. Both are
// exact copies.
func (p *ConvPlan) BlockWeightGrad(dst, w []float32) { p.wgradReorder(dst, w, false) }

// UnblockWeightGrad copies src, in the layout of WeightGradLayout, to dst
// in plain OIHW.
func (p *ConvPlan) UnblockWeightGrad(dst, src []float32) { p.wgradReorder(dst, src, true) }

func (p *ConvPlan) wgradReorder(dst, src []float32, toPlain bool) {
	if !p.blocked {
		shapePanic("ConvPlan.wgradReorder", "the plan's weight-gradient layout is not row-blocked")
	}
	_, nw, _ := p.sizes()
	nd, ns := p.wgrad.Len, nw
	if toPlain {
		nd, ns = nw, p.wgrad.Len
	}
	checkConvLen("wgradReorder", "dst", len(dst), nd)
	checkConvLen("wgradReorder", "src", len(src), ns)
	var buf [errLen]C.char
	t := C.int(0)
	if toPlain {
		t = 1
	}
	rc := C.dp_conv_wgrad_reorder(p.c, t, (*C.float)(unsafe.Pointer(&src[0])), (*C.float)(unsafe.Pointer(&dst[0])), &buf[0], errLen)
	runtime.KeepAlive(p)
	if rc != 0 {
		panic("tensor: oneDNN weight-gradient reorder: " + C.GoString(&buf[0]))
	}
}
