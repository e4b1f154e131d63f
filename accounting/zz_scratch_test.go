package accounting

import (
	"fmt"
	"testing"
	"time"
)

func TestScratch(t *testing.T) {
	r := loadRef(t)
	mx := 0.0
	for _, c := range r.Epsilon {
		if c.Accountant != KindRDP {
			continue
		}
		a := NewRDP(nil)
		a.Compose(Steps(c.SamplingRate, c.NoiseMultiplier, c.Steps))
		eps, _, _ := a.EpsilonAndOrder(c.Delta)
		if e := relErr(eps, c.Epsilon); e > mx {
			mx = e
		}
	}
	fmt.Println("max rel err", mx)
	a := NewRDP(nil)
	a.Compose(Steps(65536.0/1281167, 1.3127, 1369))
	fmt.Println(a.EpsilonAndOrder(1e-6))
	for _, p := range [][2]float64{{0.01, 1}, {0.001, 1}, {0.1, 0.5}, {0.01, 0.5}, {0.004, 2}, {0.05, 1.3}} {
		t0 := time.Now()
		a := NewRDP(nil)
		a.Compose(Steps(p[0], p[1], 1000000))
		e, o, _ := a.EpsilonAndOrder(1e-5)
		fmt.Println(p, e, o, time.Since(t0))
	}
}
