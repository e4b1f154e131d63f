package data

import (
	"image"
	"image/color"
	"sync"
)

// Decoding memory. A compressed image may expand a thousandfold (a 120 KB
// PNG can hold 11000×11000 RGBA pixels, 1.3 GB decoded), and every decoder
// goroutine may hold one. So that a folder of such images cannot exhaust a
// many-core machine, each decode first reserves its estimated memory from
// one process-wide budget: at most decodeBudgetBytes are reserved at a
// time, except by a single image larger than the whole budget, which then
// decodes alone. Peak decode memory is therefore at most
// max(decodeBudgetBytes, the largest image's estimate), plus the decoded
// images waiting in the pipelines' windows.

// largeDecodeBytes: after a decode that reserved at least this much, its
// memory is returned to the OS at once (debug.FreeOSMemory).
const largeDecodeBytes = 256 << 20

// decodeBudgetBytes is the budget (a variable for tests).
var decodeBudgetBytes int64 = 1 << 30

var decodeBudget = newByteBudget()

// decodeEstimate bounds the bytes decoding an image of cfg allocates: the
// decoder's image (bytes per pixel of its colour model) plus about as much
// again of decoder scratch (image/png holds two rows and the zlib window,
// image/jpeg its component planes), plus the 3-byte CHW copy. Measured on
// an 11000×11000 RGBA PNG by the reliability probe: about 1.3 GB, 10.7
// bytes per pixel; the estimate is 11.
func decodeEstimate(cfg image.Config) int64 {
	bpp := int64(4)
	switch cfg.ColorModel {
	case color.GrayModel, color.AlphaModel:
		bpp = 1
	case color.Gray16Model, color.Alpha16Model:
		bpp = 2
	case color.YCbCrModel:
		bpp = 3
	case color.RGBA64Model, color.NRGBA64Model:
		bpp = 8
	default:
		if _, ok := cfg.ColorModel.(color.Palette); ok {
			bpp = 1
		}
	}
	return int64(cfg.Width)*int64(cfg.Height)*(2*bpp+3) + 1<<20
}

// byteBudget is a weighted semaphore over bytes with a limit read at each
// acquire (decodeBudgetBytes).
type byteBudget struct {
	mu   sync.Mutex
	cond *sync.Cond
	held int64
	peak int64 // largest held seen (tests)
}

func newByteBudget() *byteBudget {
	b := &byteBudget{}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire reserves n bytes (capped at the whole budget, so that one image
// larger than the budget still decodes, alone) and returns the amount to
// release.
func (b *byteBudget) acquire(n int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, decodeBudgetBytes)
	for b.held > 0 && b.held+n > decodeBudgetBytes {
		b.cond.Wait()
	}
	b.held += n
	b.peak = max(b.peak, b.held)
	return n
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.held -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}
