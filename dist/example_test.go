package dist_test

import (
	"crypto/sha256"
	"fmt"
	"log"
	"sync"

	"dptrain/dist"
)

// Three ranks each sum the "gradients" of their share of a batch of 10
// examples; one AllReduceSum gives every rank the total.
func Example() {
	const batch = 10
	comms := dist.Local(3) // in a real run: c, err := dist.FromEnvironment()
	results := make([][]float32, len(comms))
	var wg sync.WaitGroup
	for _, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lo, hi := dist.Partition(batch, c.Size(), c.Rank())
			grad := make([]float32, 2) // the sum of the clipped per-example gradients
			for i := lo; i < hi; i++ {
				grad[0] += float32(i)
				grad[1]++
			}
			if err := c.AllReduceSum(grad); err != nil {
				log.Fatal(err)
			}
			results[c.Rank()] = grad
		}()
	}
	wg.Wait()
	for r, g := range results {
		lo, hi := dist.Partition(batch, len(comms), r)
		fmt.Printf("rank %d: examples [%d,%d), sum %v\n", r, lo, hi, g)
	}
	// Output:
	// rank 0: examples [0,3), sum [45 10]
	// rank 1: examples [3,6), sum [45 10]
	// rank 2: examples [6,10), sum [45 10]
}

// Agree checks that every rank starts from the same weights.
func ExampleAgree() {
	comms := dist.Local(3)
	errs := make([]error, len(comms))
	var wg sync.WaitGroup
	for _, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			weights := []byte("initial weights")
			if c.Rank() == 2 {
				weights = []byte("other weights")
			}
			errs[c.Rank()] = dist.Agree(c, sha256.Sum256(weights))
		}()
	}
	wg.Wait()
	for r, err := range errs {
		fmt.Printf("rank %d: %v\n", r, err)
	}
	// Output:
	// rank 0: dist: digests differ across ranks: rank 2 of 3 does not match rank 0
	// rank 1: dist: digests differ across ranks: rank 2 of 3 does not match rank 0
	// rank 2: dist: digests differ across ranks: rank 2 of 3 does not match rank 0
}
