package accounting

import (
	"fmt"
	"testing"
	"time"
)

func TestScratch(t *testing.T) {
	for _, k := range []string{"rdp", "pld"} {
		for _, c := range [][3]float64{{1, 4096.0 / 1281167, 3127}, {4, 4096.0 / 1281167, 3127}, {8, 4096.0 / 1281167, 3127}, {10, 4096.0 / 1281167, 3127}, {3, 256.0 / 60000, 60 * 60000 / 256}, {1, 0.01, 10000}, {50, 0.5, 100}} {
			n := 0
			f := func(s float64) (float64, error) { n++; return ComputeEpsilon(k, 1e-5, c[1], s, int(c[2])) }
			g, st, tol := 1.0, 2.0, RDPCalibrationTolerance
			if k == "pld" {
				g, _ = CalibrateNoise("rdp", c[0], 1e-5, c[1], int(c[2]))
				st, tol = 1.25, PLDCalibrationTolerance
			}
			t0 := time.Now()
			s, e, err := bisectSigma(f, c[0], g, st, tol)
			fmt.Println(k, c, s, e, err, time.Since(t0), n)
		}
	}
}
