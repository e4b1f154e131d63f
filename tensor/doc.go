// Package tensor holds dptrain's float32 arrays and the kernels every layer
// runs on: matrix multiply (OpenBLAS through cgo by default, a pure-Go
// fallback under the build tag "noblas" or with CGO_ENABLED=0), float64
// products for the per-example norm rules (DgemmSerial, DsyrkSerial, and
// Gram64: float64 Gram matrices of float32 columns, in an AVX-512 C kernel
// where the CPU has one),
// convolutions on oneDNN's JIT kernels (ConvPlan; cgo, libdnnl; direct, or
// Winograd's F(4×4, 3×3) for the 3×3 products a caller allows and the shape
// rule ConvShape.WinogradOps picks; none under "nodnnl", "noblas" or
// CGO_ENABLED=0, where callers use im2col/col2im and GEMM), and parallel
// loops.
//
// Layout: activations are NCHW (batch, channel, height, width), row-major.
// NCHW makes one example a contiguous slab (per-example work in DP-SGD slices
// the batch without copying) and makes im2col produce the (C·kh·kw)×(H·W)
// patch matrix of one example in place, so a convolution is one GEMM per
// example with the weight matrix as the left operand.
//
// Determinism contract: for given inputs, every kernel returns the same bits
// on every call and at every thread count (internal/par.SetThreads, the
// process's one thread setting), with a given backend
// on a given machine. Concretely:
//
//   - Sgemm cuts C into blocks whose size depends only on (m, n, k), never
//     on Threads(); each block is one single-threaded OpenBLAS call (OpenBLAS
//     runs with one thread always), so each element of C is computed by the
//     same kernel call with the same operands whether the blocks run on one
//     goroutine or many. SgemmSerial, DgemmSerial, DsyrkSerial and Gram64
//     are single calls (Gram64's C kernel sums each entry in row order;
//     which path runs depends on the size and the CPU only). Results do not depend on the operands' addresses (OpenBLAS packs
//     them; checked by TestSgemmSerialIndependentOfAddresses).
//   - A ConvPlan call runs on its calling goroutine's thread alone (oneDNN's
//     OpenMP thread count set to 1 before each call, float32 arithmetic
//     pinned): its result depends on its shape and inputs only, on one
//     machine and oneDNN build with the same ONEDNN_* environment (the
//     shape also fixes which products run Winograd there).
//   - The elementwise kernels and reductions run vectorised C versions on
//     long slices (cgo, amd64) that do the Go loops' operations in the
//     same order, so the switch by length changes no bits (NaN payloads
//     aside: which NaN operand propagates depends on instruction order).
//   - par.For's chunks do depend on Threads(): it is for elementwise
//     work only, where nothing is summed across a chunk.
//   - par.Each hands items to goroutines dynamically: an item's result
//     may not depend on the goroutine (worker) that computes it, so callers
//     keep per-worker scratch only, never per-worker partial sums.
//   - Reductions over items use fixed slots (Slots, SlotRange, SlotBuffers):
//     a fixed partition of the items, each slot summed in order into its own
//     accumulator, the slots added in slot order.
//
// Layers build on this (package nn): their chunking depends only on the
// problem size, so a seeded training run repeats bit for bit at any thread
// count. Different backends (OpenBLAS, the pure-Go kernels), or OpenBLAS
// builds selecting different CPU kernels, give different bits.
//
// Misuse of shapes (wrong lengths, negative sizes) is a programming error and
// panics with a *ShapeError.
package tensor
