//go:build !cgo || noblas || !linux || !amd64

package dpsgd

// No C in this build: the block loop is gaussPairsGo.
const gaussC = false

func gaussPairs[T float32 | float64](d []T, words []uint64, std, g, invG float64) int {
	return gaussPairsGo(d, words, 0, std, g, invG)
}

func gaussPairsC[T float32 | float64](d []T, words []uint64, count int, std, g, invG float64) int {
	panic("dpsgd: no C sampler in this build")
}
