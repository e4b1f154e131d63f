package optim_test

import (
	"fmt"

	"dptrain/optim"
)

// An update with momentum, a cosine schedule with warm-up and an average of
// the weights; the gradient would come from dpsgd.PrivateStep.
func Example() {
	params := [][]float32{{0.5, -0.5}, {0}} // a weight and a bias
	opt, err := optim.New(optim.DefaultConfig(optim.KindMomentum), []int{2, 1}, []bool{true, false})
	if err != nil {
		panic(err)
	}
	sched, err := optim.ScheduleConfig{Kind: optim.SchedCosine, LR: 2, WarmupSteps: 10, TotalSteps: 100}.Build()
	if err != nil {
		panic(err)
	}
	ema, err := optim.NewEMA(params, 0.999, true)
	if err != nil {
		panic(err)
	}
	for step := range int64(3) {
		grad := [][]float32{{0.01, -0.02}, {0.005}}
		opt.Step(params, grad, sched.LR(step))
		ema.Update(params)
	}
	fmt.Printf("lr %.2f %.2f %.2f, %d updates\n", sched.LR(0), sched.LR(1), sched.LR(2), opt.Steps())
	fmt.Printf("weights %.4f, averaged %.4f\n", params[0], ema.Params()[0])
	// Output:
	// lr 0.20 0.40 0.60, 3 updates
	// weights [0.4742 -0.4483], averaged [0.4786 -0.4571]
}
