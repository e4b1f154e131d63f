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
	sigma, eps, err := accounting.CalibrateNoise(accounting.KindRDP,
		accounting.Budget{Epsilon: 8, Delta: 1e-6},
		accounting.Schedule{SamplingRate: q, Steps: 3127})
	if err != nil {
		panic(err)
	}
	fmt.Printf("σ = %.4f (ε = %.4f)\n", sigma, eps)
	// Output: σ = 0.5550 (ε = 8.0000)
}

// A run that first releases private feature statistics (two Gaussian
// releases with σ = 8) spends part of the budget before its steps:
// Schedule.Prior counts it in every question.
func ExampleSchedule() {
	budget := accounting.Budget{Epsilon: 3, Delta: 1e-5}
	s := accounting.Schedule{
		SamplingRate: 8192.0 / 50000,
		Steps:        120,
		Prior:        accounting.SelfComposed{Event: accounting.Gaussian{NoiseMultiplier: 8}, Count: 2},
	}
	sigma, _, err := accounting.CalibrateNoise(accounting.KindRDP, budget, s)
	if err != nil {
		panic(err)
	}
	s.NoiseMultiplier = sigma
	eps, _ := accounting.Epsilon(accounting.KindRDP, budget.Delta, s)
	steps, _ := accounting.MaxSteps(accounting.KindRDP, budget, s)
	fmt.Printf("σ = %.4f: ε = %.4f after %d steps; the budget allows %d\n", sigma, eps, s.Steps, steps)
	// Output: σ = 2.9934: ε = 2.9999 after 120 steps; the budget allows 120
}

// Calibrate searches any parameter of which ε is non-increasing: here the
// noise multiplier σ_n of the two statistics releases, so that they spend
// ε = 0.5 at δ = 1e-5.
func ExampleCalibrate() {
	release := func(sigmaN float64) accounting.Event {
		return accounting.SelfComposed{Event: accounting.Gaussian{NoiseMultiplier: sigmaN}, Count: 2}
	}
	sigmaN, eps, err := accounting.Calibrate(accounting.KindPLD, accounting.Budget{Epsilon: 0.5, Delta: 1e-5},
		release, accounting.Param{Name: "statistics noise σ_n"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("σ_n = %.3f (ε = %.4f)\n", sigmaN, eps)
	// Output: σ_n = 9.947 (ε = 0.4999)
}

// CalibrateCount finds the largest count: here how many of those releases
// fit in ε = 1.
func ExampleCalibrateCount() {
	releases := func(n int) accounting.Event {
		return accounting.SelfComposed{Event: accounting.Gaussian{NoiseMultiplier: 8}, Count: n}
	}
	n, err := accounting.CalibrateCount(accounting.KindRDP, accounting.Budget{Epsilon: 1, Delta: 1e-5}, releases, 1)
	if err != nil {
		panic(err)
	}
	fmt.Println(n, "releases")
	// Output: 3 releases
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
	eps, _ := restored.Epsilon(accounting.KindRDP, 1e-5)
	fmt.Printf("ε = %.4f\n", eps)
	// Output:
	// {"format":"dptrain.accounting.ledger","version":1,"entries":[{"count":1000,"event":{"type":"poisson_sampled","sampling_rate":0.01,"event":{"type":"gaussian","noise_multiplier":1}}}]}
	// ε = 2.1014
}
