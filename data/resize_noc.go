//go:build !cgo

package data

func resampleH(rows []uint8, sw int, f *filterWeights, dw int, tmp []float32) {
	resampleHGo(rows, sw, f, dw, tmp)
}

func resampleV(tmp []float32, dw, ylo int, f *filterWeights, dh int, out []float32) {
	resampleVGo(tmp, dw, ylo, f, dh, out)
}
