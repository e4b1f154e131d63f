//go:build !cgo || noblas || !linux || !amd64

package tensor

// No C kernels in this build: the Go loops of elementwise.go run always.
const (
	cKernelMin   = 0
	haveCKernels = false
)

func reluC(dst, x []float32)                            { panic("tensor: no C kernels") }
func reluMaskC(dst, dy, y []float32)                    { panic("tensor: no C kernels") }
func addC(dst, a, b []float32)                          { panic("tensor: no C kernels") }
func addReLUC(dst, a, b []float32)                      { panic("tensor: no C kernels") }
func affineC(dst, x []float32, m, a, b float32)         { panic("tensor: no C kernels") }
func combineC(dst, dy, x []float32, m, a, b, c float32) { panic("tensor: no C kernels") }

func sumC(x []float32) float64                                     { panic("tensor: no C kernels") }
func tanhC(dst, x []float32)                                       { panic("tensor: no C kernels") }
func tanhBackwardC(dst, dy, y []float32)                           { panic("tensor: no C kernels") }
func centeredMomentsC(x []float32, m float32) (s1, s2 float64)     { panic("tensor: no C kernels") }
func centeredDotsC(dy, x []float32, m float32) (sdy, sdyx float64) { panic("tensor: no C kernels") }

func sumSquaresC(x []float32) float64             { panic("tensor: no C kernels") }
func axpyC(dst []float32, a float32, x []float32) { panic("tensor: no C kernels") }

func wsRowC(dst, g, w []float32, inv float64, add bool) { panic("tensor: no C kernels") }
func wsRowStatsC(g, w []float32) WSStats                { panic("tensor: no C kernels") }
func wsBlockedRowStatsC(dst []WSStats, g, w []float32, l BlockedLayout) {
	panic("tensor: no C kernels")
}
func wsGhostRowSumsC(dst []WSGhostSums, in *WSGhostInput) { panic("tensor: no C kernels") }

func gram64C(dst []float64, ldd int, x []float32, rows, n, ldx int, scale []float32) bool {
	return false
}

func gatherGramC(dst []float64, n int, p []float64, m int, idx []int32, kk int, skip int32) {
	panic("tensor: no C kernels")
}

func gramAVX512() bool { return false }

func maxPoolPlaneC(out []float32, arg []int32, in []float32, h, w, oh, ow, k, stride, pad int) {
	panic("tensor: no C kernels")
}

func wino2Supported() bool                   { return false }
func wino2BufLen(n, cin, h, w, cout int) int { return 0 }
func wino2C(dw, x, dy []float32, n, cin, h, w, cout int, buf []float32) {
	panic("tensor: no C kernels")
}
