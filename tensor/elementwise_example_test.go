package tensor_test

import (
	"fmt"

	"dptrain/tensor"
)

// The patch matrix of a 2×2 convolution (stride 1, no padding) over one
// 3×3 channel: row (ki, kj) holds x[oy+ki, ox+kj] for the 4 output
// positions; Col2im adds it back (each pixel counted once per window).
func ExampleIm2col() {
	x := []float32{
		1, 2, 3,
		4, 5, 6,
		7, 8, 9,
	}
	col := make([]float32, 4*4)
	tensor.Im2col(col, x, 1, 3, 3, 2, 2, 1, 0)
	for r := 0; r < 4; r++ {
		fmt.Println(col[r*4 : (r+1)*4])
	}
	dx := make([]float32, 9)
	tensor.Col2im(dx, col, 1, 3, 3, 2, 2, 1, 0)
	fmt.Println(dx)
	// Output:
	// [1 2 4 5]
	// [2 3 5 6]
	// [4 5 7 8]
	// [5 6 8 9]
	// [1 4 3 8 20 12 7 16 9]
}

// A tanh layer's forward and backward, and a ReLU's backward from its output.
func ExampleTanh() {
	x := []float32{-2, 0, 0.5, 20}
	y := make([]float32, len(x))
	tensor.Tanh(y, x)
	fmt.Printf("%.6f\n", y)
	dx := make([]float32, len(x))
	tensor.TanhBackward(dx, []float32{1, 1, 1, 1}, y)
	fmt.Printf("%.6f\n", dx)
	tensor.ReLU(y, x)
	tensor.ReLUMask(dx, []float32{1, 2, 3, 4}, y)
	fmt.Println(dx)
	// Output:
	// [-0.964028 0.000000 0.462117 1.000000]
	// [0.070651 1.000000 0.786448 0.000000]
	// [0 0 3 4]
}
