package audit

import (
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"testing"
)

const refdataPath = "../../shared/refdata/audit_vectors.json"

// detNormal returns the n deterministic N(mu, 1) scores of JAX Privacy's
// tests: the quantiles at (i + ½)/n, i = 0, …, n−1.
func detNormal(mu float64, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = normQuantile((float64(i)+0.5)/float64(n)) + mu
	}
	return s
}

// TestRefdata reproduces JAX Privacy's test_epsilon_one_run_close: 10⁴
// in-canaries N(μ,1), 10⁴ out-canaries N(0,1), significance 0.05,
// δ = 1e-6, one-sided guesses, Bonferroni over the Pareto frontier.
func TestRefdata(t *testing.T) {
	raw, err := os.ReadFile(refdataPath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("reference data %s is absent; skipping the JAX Privacy comparison", refdataPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			Mu     float64 `json:"mu"`
			OneRun float64 `json:"epsilon_one_run"`
			FDP    float64 `json:"epsilon_one_run_fdp"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) == 0 {
		t.Fatal("no cases in the reference data")
	}
	const n, rtol = 10000, 1e-5
	out := detNormal(0, n)
	for _, c := range ref.Cases {
		in := detNormal(c.Mu, n)
		res, err := EpsilonFromScores(in, out, Options{Delta: 1e-6, Significance: 0.05})
		if err != nil {
			t.Fatalf("mu=%v: %v", c.Mu, err)
		}
		check := func(name string, got, want float64) {
			if math.Abs(got-want) > rtol*math.Abs(want) {
				t.Errorf("mu=%v: %s = %.9g, JAX Privacy %.9g (rel. err %.2g)",
					c.Mu, name, got, want, math.Abs(got-want)/math.Max(math.Abs(want), 1e-300))
			}
		}
		check("epsilon_one_run", res.EpsilonOneRun, c.OneRun)
		check("epsilon_one_run_fdp", res.EpsilonFDP, c.FDP)
		t.Logf("mu=%v: %d frontier thresholds; one-run %.7f (r=%d, v=%d), f-DP %.7f (r=%d, v=%d)",
			c.Mu, res.Thresholds, res.EpsilonOneRun, res.Guesses, res.Correct,
			res.EpsilonFDP, res.GuessesFDP, res.CorrectFDP)
		if res.Canaries != 2*n || res.InCanaries != n || res.OutCanaries != n {
			t.Errorf("mu=%v: counts m=%d in=%d out=%d", c.Mu, res.Canaries, res.InCanaries, res.OutCanaries)
		}
		// The reported guess sets must reproduce the bounds at the
		// Bonferroni-corrected level.
		sig := 0.05 / float64(res.Thresholds)
		if res.Guesses > 0 {
			e, err := OneRunEpsilon(Guesses{res.Canaries, res.Guesses, res.Correct}, 1e-6, sig)
			if err != nil || math.Abs(e-res.EpsilonOneRun) > 1e-8 {
				t.Errorf("mu=%v: guess set gives %v (%v), result %v", c.Mu, e, err, res.EpsilonOneRun)
			}
		}
		if res.GuessesFDP > 0 {
			e, err := OneRunEpsilonFDP(Guesses{res.Canaries, res.GuessesFDP, res.CorrectFDP}, 1e-6, sig)
			if err != nil || math.Abs(e-res.EpsilonFDP) > 1e-8 {
				t.Errorf("mu=%v: f-DP guess set gives %v (%v), result %v", c.Mu, e, err, res.EpsilonFDP)
			}
		}
	}
}
