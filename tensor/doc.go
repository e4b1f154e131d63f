// Package tensor holds dptrain's float32 arrays and the kernels every layer
// runs on: matrix multiply (OpenBLAS through cgo by default, a pure-Go
// fallback under the build tag "noblas" or with CGO_ENABLED=0), im2col/col2im
// for convolutions, and a small parallel-for helper.
//
// Layout: activations are NCHW (batch, channel, height, width), row-major.
// NCHW makes one example a contiguous slab (per-example work in DP-SGD slices
// the batch without copying) and makes im2col produce the (C·kh·kw)×(H·W)
// patch matrix of one example in place, so a convolution is one GEMM per
// example with the weight matrix as the left operand.
//
// Misuse of shapes (wrong lengths, negative sizes) is a programming error and
// panics with a *ShapeError.
package tensor
