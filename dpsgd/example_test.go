package dpsgd_test

import (
	"fmt"

	"dptrain/dpsgd"
)

// The data-independent half of one private step: noise on the clipped sum,
// division by the expected batch size, the update, the average.
func Example() {
	params := [][]float32{{0.5, -0.5}, {0}} // a weight and a bias
	sizes := []int{2, 1}

	noise := dpsgd.NewSeededNoise(2024) // dpsgd.NewSecureNoise() for a release
	opt, err := dpsgd.NewOptimizer(dpsgd.DefaultOptimizerConfig(dpsgd.KindMomentum), sizes, []bool{true, false})
	if err != nil {
		panic(err)
	}
	sched, err := dpsgd.ScheduleConfig{Kind: dpsgd.SchedCosine, LR: 2, WarmupSteps: 10, TotalSteps: 100}.Build()
	if err != nil {
		panic(err)
	}
	ema, err := dpsgd.NewEMA(params, 0.999, true)
	if err != nil {
		panic(err)
	}

	const sigma, clip, expectedBatch = 1.1, 1.0, 256
	for step := range int64(3) {
		sum := [][]float32{{3, -2}, {1}} // Σ of clipped per-example gradients (from nn)
		for _, g := range sum {
			noise.AddGaussian(g, sigma*clip)
			for i := range g {
				g[i] /= expectedBatch
			}
		}
		opt.Step(params, sum, sched.LR(step))
		ema.Update(params)
	}
	state, _ := noise.MarshalBinary()
	resumed, _ := dpsgd.RestoreNoise(state)
	fmt.Println(noise.Mode(), opt.Steps(), ema.Updates(), resumed.Mode())
	fmt.Printf("lr at steps 0, 9, 55, 100: %.3f %.3f %.3f %.3f\n", sched.LR(0), sched.LR(9), sched.LR(55), sched.LR(100))
	// Output:
	// seeded 3 3 seeded
	// lr at steps 0, 9, 55, 100: 0.200 1.960 0.844 0.000
}
