package tensor

import (
	"fmt"
	"slices"
)

// ShapeError is the panic value for misuse of shapes.
type ShapeError struct {
	Op  string
	Msg string
}

func (e *ShapeError) Error() string { return "tensor: " + e.Op + ": " + e.Msg }

func shapePanic(op, format string, args ...any) {
	panic(&ShapeError{Op: op, Msg: fmt.Sprintf(format, args...)})
}

// Tensor is a dense row-major float32 array. Data may be a view into a larger
// buffer; len(Data) always equals the product of Shape.
type Tensor struct {
	Shape []int
	Data  []float32
}

// Numel returns the product of the dimensions.
func Numel(shape ...int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			shapePanic("Numel", "negative dimension in %v", shape)
		}
		n *= d
	}
	return n
}

// New returns a zeroed tensor of the given shape.
func New(shape ...int) *Tensor {
	s := append([]int(nil), shape...)
	return &Tensor{Shape: s, Data: make([]float32, Numel(s...))}
}

// FromData wraps data (not copied) with the given shape.
func FromData(data []float32, shape ...int) *Tensor {
	if len(data) != Numel(shape...) {
		shapePanic("FromData", "len %d does not match shape %v", len(data), shape)
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}
}

// Numel returns the number of elements.
func (t *Tensor) Numel() int { return len(t.Data) }

// Dim returns dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

// Reshape returns a view with a new shape over the same data.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	return FromData(t.Data, shape...)
}

// Slice0 returns a view of rows [lo,hi) along the first dimension.
func (t *Tensor) Slice0(lo, hi int) *Tensor {
	if lo < 0 || hi > t.Shape[0] || lo > hi {
		shapePanic("Slice0", "range [%d,%d) out of [0,%d)", lo, hi, t.Shape[0])
	}
	inner := len(t.Data) / max(t.Shape[0], 1)
	s := append([]int{hi - lo}, t.Shape[1:]...)
	return &Tensor{Shape: s, Data: t.Data[lo*inner : hi*inner]}
}

// Ensure returns t if it already has exactly the given shape and otherwise a
// tensor of that shape that reuses t's backing array when it is large enough.
// It is the building block for per-layer buffers that are allocated once and
// reused across steps (the batch size may change between Poisson batches).
func Ensure(t *Tensor, shape ...int) *Tensor {
	n := Numel(shape...)
	if t != nil && slices.Equal(t.Shape, shape) {
		return t
	}
	if t != nil && cap(t.Data) >= n {
		return &Tensor{Shape: append(t.Shape[:0:0], shape...), Data: t.Data[:n]}
	}
	return New(shape...)
}

// EnsureSlice returns buf[:n] when it has the capacity, else a new slice.
func EnsureSlice(buf []float32, n int) []float32 {
	if cap(buf) >= n {
		return buf[:n]
	}
	return make([]float32, n)
}

// Zero sets every element of x to 0.
func Zero(x []float32) {
	clear(x)
}
