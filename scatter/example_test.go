package scatter_test

import (
	"fmt"

	"dptrain/scatter"
	"dptrain/tensor"
)

// The ScatterNet front end of Tramèr & Boneh: J = 2 scales, L = 8
// orientations, 81 maps per channel at a quarter of the resolution.
func Example() {
	s := scatter.New(3, 32, 32, 2, 8)
	x := tensor.New(2, 3, 32, 32)
	for i := range x.Data {
		x.Data[i] = 1 // a constant image: only the order-0 map is non-zero
	}
	y := s.Apply(x)
	fmt.Println(scatter.Channels(2, 8), s.OutShape(), y.Shape)
	// Output: 81 [243 8 8] [2 243 8 8]
}
