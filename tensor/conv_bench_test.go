package tensor

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// BenchmarkConvKernels times one convolution call on one goroutine, by
// the compiled-in kernels (ConvPlan: oneDNN) and by im2col and GEMM (per
// example: im2col, then SGEMM; backward-data: SGEMM, then col2im), for the
// three products of a training step on ResNet-18 layer shapes. The metric
// is GFLOP/s of the convolution (2·N·Hout·Wout·Cin·K²·Cout per call).
func BenchmarkConvKernels(b *testing.B) {
	shapes := []ConvShape{
		{N: 1, Cin: 3, H: 224, W: 224, Cout: 64, K: 7, Stride: 2, Pad: 3},
		{N: 1, Cin: 64, H: 56, W: 56, Cout: 64, K: 3, Stride: 1, Pad: 1},
		{N: 4, Cin: 64, H: 32, W: 32, Cout: 64, K: 3, Stride: 1, Pad: 1},
		{N: 4, Cin: 128, H: 28, W: 28, Cout: 128, K: 3, Stride: 1, Pad: 1},
		{N: 8, Cin: 128, H: 16, W: 16, Cout: 256, K: 1, Stride: 2, Pad: 0},
		{N: 8, Cin: 256, H: 8, W: 8, Cout: 256, K: 3, Stride: 1, Pad: 1},
		{N: 16, Cin: 512, H: 7, W: 7, Cout: 512, K: 3, Stride: 1, Pad: 1},
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range shapes {
		oh, ow := s.Out()
		t := oh * ow
		d := s.Cin * s.K * s.K
		x := randSlice(r, s.N*s.Cin*s.H*s.W)
		w := randSlice(r, s.Cout*d)
		dy := randSlice(r, s.N*s.Cout*t)
		y := make([]float32, len(dy))
		dx := make([]float32, len(x))
		dw := make([]float32, len(w))
		col := make([]float32, d*t)
		flops := 2 * float64(s.N*t*d*s.Cout)
		name := fmt.Sprintf("N%d-%dx%dx%d-k%ds%d-to%d", s.N, s.Cin, s.H, s.W, s.K, s.Stride, s.Cout)
		p, err := NewConvPlan(s)
		if err != nil {
			b.Fatal(err)
		}
		var cw ConvWeights
		cw.Set(w)
		ops := []struct {
			op         string
			plan, gemm func()
		}{
			{"forward",
				func() { p.Forward(y, x, &cw) },
				func() {
					for n := 0; n < s.N; n++ {
						Im2col(col, x[n*s.Cin*s.H*s.W:(n+1)*s.Cin*s.H*s.W], s.Cin, s.H, s.W, s.K, s.K, s.Stride, s.Pad)
						SgemmSerial(false, false, s.Cout, t, d, 1, w, d, col, t, 0, y[n*s.Cout*t:(n+1)*s.Cout*t], t)
					}
				}},
			{"backward-data",
				func() { p.BackwardData(dx, dy, &cw) },
				func() {
					for n := 0; n < s.N; n++ {
						SgemmSerial(true, false, d, t, s.Cout, 1, w, d, dy[n*s.Cout*t:(n+1)*s.Cout*t], t, 0, col, t)
						Col2im(dx[n*s.Cin*s.H*s.W:(n+1)*s.Cin*s.H*s.W], col, s.Cin, s.H, s.W, s.K, s.K, s.Stride, s.Pad)
					}
				}},
			{"backward-weights",
				func() { p.BackwardWeights(dw, x, dy) },
				func() {
					for n := 0; n < s.N; n++ {
						Im2col(col, x[n*s.Cin*s.H*s.W:(n+1)*s.Cin*s.H*s.W], s.Cin, s.H, s.W, s.K, s.K, s.Stride, s.Pad)
						beta := float32(1)
						if n == 0 {
							beta = 0
						}
						SgemmSerial(false, true, s.Cout, d, t, 1, dy[n*s.Cout*t:(n+1)*s.Cout*t], t, col, t, beta, dw, d)
					}
				}},
		}
		for _, o := range ops {
			for _, k := range []string{ConvKernels, "im2col"} {
				run := o.gemm
				if k != "im2col" {
					if p == nil {
						continue
					}
					run = o.plan
				}
				b.Run(fmt.Sprintf("%s/%s/%s", name, o.op, k), func(b *testing.B) {
					run()
					b.ResetTimer()
					for range b.N {
						run()
					}
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkConvWinograd times each product of a plan direct and with
// Winograd allowed (ConvShape.Winograd = WinogradAll; the shape rule then
// decides, and the sub-benchmark name says whether the product ran it), on
// the call shapes ResNet-18 and WRN-16-4 layers get (rows per call as
// planChunk and weightTasks cut them). Metric: GFLOP/s of the direct
// convolution's arithmetic, so the two rows compare as times do.
func BenchmarkConvWinograd(b *testing.B) {
	shapes := []ConvShape{
		{N: 1, Cin: 64, H: 56, W: 56, Cout: 64, K: 3, Stride: 1, Pad: 1},
		{N: 1, Cin: 128, H: 28, W: 28, Cout: 128, K: 3, Stride: 1, Pad: 1},
		{N: 1, Cin: 256, H: 14, W: 14, Cout: 256, K: 3, Stride: 1, Pad: 1},
		{N: 8, Cin: 64, H: 32, W: 32, Cout: 64, K: 3, Stride: 1, Pad: 1},
		{N: 1, Cin: 128, H: 16, W: 16, Cout: 128, K: 3, Stride: 1, Pad: 1},
		{N: 8, Cin: 128, H: 16, W: 16, Cout: 128, K: 3, Stride: 1, Pad: 1},
		{N: 8, Cin: 256, H: 8, W: 8, Cout: 256, K: 3, Stride: 1, Pad: 1},
		{N: 2, Cin: 512, H: 7, W: 7, Cout: 512, K: 3, Stride: 1, Pad: 1},
		{N: 1, Cin: 512, H: 7, W: 7, Cout: 512, K: 3, Stride: 1, Pad: 1},
		{N: 8, Cin: 512, H: 7, W: 7, Cout: 512, K: 3, Stride: 1, Pad: 1},
		{N: 8, Cin: 256, H: 14, W: 14, Cout: 256, K: 3, Stride: 1, Pad: 1},
		// Stored-rule calls (one example: cnn-cifar's layers, 8² and 32²
		// shapes of WRN and ResNet) and batch chunks of the same layers.
		{N: 1, Cin: 3, H: 32, W: 32, Cout: 32, K: 3, Stride: 1, Pad: 1},
		{N: 1, Cin: 32, H: 32, W: 32, Cout: 32, K: 3, Stride: 1, Pad: 1},
		{N: 1, Cin: 32, H: 16, W: 16, Cout: 64, K: 3, Stride: 1, Pad: 1},
		{N: 1, Cin: 64, H: 32, W: 32, Cout: 64, K: 3, Stride: 1, Pad: 1},
		{N: 1, Cin: 64, H: 8, W: 8, Cout: 128, K: 3, Stride: 1, Pad: 1},
		{N: 1, Cin: 128, H: 8, W: 8, Cout: 128, K: 3, Stride: 1, Pad: 1},
		{N: 8, Cin: 32, H: 32, W: 32, Cout: 32, K: 3, Stride: 1, Pad: 1},
		{N: 1, Cin: 64, H: 16, W: 16, Cout: 64, K: 3, Stride: 1, Pad: 1},
		{N: 16, Cin: 64, H: 16, W: 16, Cout: 64, K: 3, Stride: 1, Pad: 1},
	}
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range shapes {
		oh, ow := s.Out()
		t := oh * ow
		d := s.Cin * s.K * s.K
		x := randSlice(r, s.N*s.Cin*s.H*s.W)
		w := randSlice(r, s.Cout*d)
		dy := randSlice(r, s.N*s.Cout*t)
		y := make([]float32, len(dy))
		dx := make([]float32, len(x))
		dw := make([]float32, len(w))
		flops := 2 * float64(s.N*t*d*s.Cout)
		if k := NewWinogradWeightGrad(s); k != nil {
			own := make([]float32, k.Layout().Len)
			b.Run(fmt.Sprintf("N%d-%dx%dx%d-to%d/backward-weights/f2x2", s.N, s.Cin, s.H, s.W, s.Cout), func(b *testing.B) {
				k.BackwardWeightsBlocked(own, x, dy)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					k.BackwardWeightsBlocked(own, x, dy)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
		for _, wino := range []WinogradOps{0, WinogradAll} {
			ws := s
			ws.Winograd = wino
			p, err := NewConvPlan(ws)
			if err != nil {
				b.Fatal(err)
			}
			if p == nil {
				b.Skipf("no convolution kernels (%s)", ConvKernels)
			}
			var cw ConvWeights
			cw.Set(w)
			impls := strings.Split(p.Impl(), " / ")
			for i, o := range []struct {
				op  string
				run func()
			}{
				{"forward", func() { p.Forward(y, x, &cw) }},
				{"backward-data", func() { p.BackwardData(dx, dy, &cw) }},
				{"backward-weights", func() { p.BackwardWeights(dw, x, dy) }},
			} {
				alg := "direct"
				if strings.Contains(impls[i], "wino") {
					alg = "winograd"
				} else if wino != 0 {
					continue // the rule kept it direct: the same as the row above
				}
				b.Run(fmt.Sprintf("N%d-%dx%dx%d-to%d/%s/%s", s.N, s.Cin, s.H, s.W, s.Cout, o.op, alg), func(b *testing.B) {
					o.run()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						o.run()
					}
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
