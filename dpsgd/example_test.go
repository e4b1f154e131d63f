package dpsgd_test

import (
	"fmt"

	"dptrain/accounting"
	"dptrain/dpsgd"
)

// The mechanism of one private step, by hand (PrivateStep does the same on
// a model): clip each example's gradient to norm C, sum, add 𝒩(0, σ²C²)
// once, divide by the expected batch size B = qN, and report the event.
func Example() {
	const clip, sigma, q, expectedBatch = 1.0, 1.1, 0.01, 256
	perExample := [][]float32{{3, 4}, {0.3, 0.4}} // norms 5 and 0.5
	sqNorms := []float64{25, 0.25}

	factors := make([]float32, len(perExample))
	clipped := dpsgd.ClipFactors(factors, sqNorms, clip)
	sum := make([]float32, 2)
	for i, g := range perExample {
		for j := range sum {
			sum[j] += factors[i] * g[j]
		}
	}
	noise := dpsgd.NewSeededNoise(2024) // dpsgd.NewSecureNoise() for a release
	noise.AddGaussian(sum, sigma*clip)
	for j := range sum {
		sum[j] /= expectedBatch
	}
	event := accounting.Step(q, sigma) // what PrivateStep.Finish returns

	fmt.Printf("clipped %d of %d, factors %.4f\n", clipped, len(factors), factors)
	fmt.Println(noise.Mode(), event.Validate() == nil)
	// Output:
	// clipped 1 of 2, factors [0.2000 1.0000]
	// seeded true
}
