//go:build !cgo

package data

func resampleH(rows []uint8, sw int, f *filterWeights, dw int, tmp []float32) {
	resampleHGo(rows, sw, f, dw, tmp)
}

func resampleV(tmp []float32, dw, ylo int, f *filterWeights, dh int, out []float32) {
	resampleVGo(tmp, dw, ylo, f, dh, out)
}

func clampU8Plane(v []float32, dst []uint8) { clampU8PlaneGo(v, dst) }

func resampleVU8(plane []uint8, sw, xlo, cols int, f *filterWeights, dh int, tmp []float32) {
	resampleVU8Go(plane, sw, xlo, cols, f, dh, tmp)
}

func resampleHF(tmp []float32, cols, xlo int, f *filterWeights, dw, dh int, out []float32) {
	resampleHFGo(tmp, cols, xlo, f, dw, dh, out)
}
