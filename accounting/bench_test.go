package accounting

import "testing"

// BenchmarkRDPEpsilon1e6Steps: ε(δ) of 10⁶ steps (q = 0.01, σ = 1) from
// scratch — one RDP evaluation at the 156 default orders, then conversion.
func BenchmarkRDPEpsilon1e6Steps(b *testing.B) {
	for b.Loop() {
		if _, err := Epsilon(KindRDP, 1e-5, Schedule{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 1_000_000}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCalibrateRDP: σ for ε = 8, δ = 1e-6, ImageNet batch 4096, 10
// epochs.
func BenchmarkCalibrateRDP(b *testing.B) {
	for b.Loop() {
		if _, _, err := CalibrateNoise(KindRDP, Budget{Epsilon: 8, Delta: 1e-6}, Schedule{SamplingRate: 4096.0 / 1281167, Steps: 3127}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPLD1e4Steps: ε(δ) of 10⁴ steps (q = 0.01, σ = 1) at interval 1e-4.
func BenchmarkPLD1e4Steps(b *testing.B) {
	for b.Loop() {
		if _, err := Epsilon(KindPLD, 1e-5, Schedule{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 10_000}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCalibratePLD: σ for ε = 3, δ = 1e-5, MNIST batch 256, 10 epochs.
func BenchmarkCalibratePLD(b *testing.B) {
	for b.Loop() {
		if _, _, err := CalibrateNoise(KindPLD, Budget{Epsilon: 3, Delta: 1e-5}, Schedule{SamplingRate: 256.0 / 60000, Steps: 2344}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLedgerRecord: recording one DP-SGD step.
func BenchmarkLedgerRecord(b *testing.B) {
	var l Ledger
	e := Step(0.01, 1)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Record(e); err != nil {
			b.Fatal(err)
		}
	}
}
