package accounting_test

import (
	"encoding/json"
	"fmt"

	"dptrain/accounting"
)

// The recipe of Kurakin et al. 2022 (ImageNet, batch 65,536, σ = 1.3127,
// 70 epochs, δ = 1e-6) under both accountants.
func Example() {
	steps, _ := accounting.StepsForEpochs(1281167, 65536, 70)
	q, _ := accounting.SamplingRate(1281167, 65536)

	rdp := accounting.NewRDP(nil)
	if err := rdp.Compose(accounting.Steps(q, 1.3127, steps)); err != nil {
		panic(err)
	}
	eps, order, _ := rdp.EpsilonAndOrder(1e-6)
	fmt.Printf("%d steps: RDP ε = %.4f (order %g)\n", steps, eps, order)

	pld := accounting.NewPLD(accounting.PLDOptions{})
	if err := pld.Compose(accounting.Steps(q, 1.3127, steps)); err != nil {
		panic(err)
	}
	eps, _ = pld.Epsilon(1e-6)
	fmt.Printf("%d steps: PLD ε = %.4f\n", steps, eps)
	// Output:
	// 1369 steps: RDP ε = 9.9767 (order 3.6)
	// 1369 steps: PLD ε = 9.2936
}

func ExampleCalibrateNoise() {
	// ε = 8 at δ = 1e-6 for 10 epochs of ImageNet at batch 4096.
	q, _ := accounting.SamplingRate(1281167, 4096)
	sigma, err := accounting.CalibrateNoise("rdp", 8, 1e-6, q, 3127)
	if err != nil {
		panic(err)
	}
	fmt.Printf("σ = %.4f\n", sigma)
	// Output: σ = 0.5550
}

func ExampleLedger() {
	var l accounting.Ledger
	for range 1000 { // one event per training step: O(1), merged
		if err := l.Record(accounting.Step(0.01, 1.0)); err != nil {
			panic(err)
		}
	}
	b, _ := json.Marshal(&l)
	fmt.Println(string(b))

	var restored accounting.Ledger // e.g. from a checkpoint
	if err := json.Unmarshal(b, &restored); err != nil {
		panic(err)
	}
	eps, _ := restored.Epsilon("rdp", 1e-5)
	fmt.Printf("ε = %.4f\n", eps)
	// Output:
	// {"format":"dptrain.accounting.ledger","version":1,"entries":[{"count":1000,"event":{"type":"poisson_sampled","sampling_rate":0.01,"event":{"type":"gaussian","noise_multiplier":1}}}]}
	// ε = 2.1014
}
