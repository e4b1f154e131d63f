package train

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dptrain/accounting"
)

// TestProgressAndMetricsShowTheRunsAccountant: the progress lines show ε
// of the accountant the run budgets and reports (PLD here), with RDP
// alongside and the target; the metrics carry that ε at the log cadence,
// equal to a ledger of the steps so far; and with the default evaluation
// cadence a run with test data evaluates four times.
func TestProgressAndMetricsShowTheRunsAccountant(t *testing.T) {
	c := tinyConfig(t)
	c.Steps, c.NoiseMultiplier, c.TargetEpsilon, c.Delta, c.LogEvery = 8, 0, 3, 1e-5, 2
	var log bytes.Buffer
	out := t.TempDir()
	s, err := Run(c, Options{Out: out, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "step 8/8") || !strings.Contains(log.String(), " ε(pld) ") || !strings.Contains(log.String(), " (rdp ") || !strings.Contains(log.String(), " of 3 ") {
		t.Fatalf("progress lines do not show ε(pld) with rdp and the target:\n%s", log.String())
	}
	if strings.Contains(log.String(), "ε(rdp)") {
		t.Fatalf("a PLD run's progress shows ε(rdp) as its ε:\n%s", log.String())
	}
	b, err := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	evals, withEps := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m struct {
			Type    string     `json:"type"`
			Step    int        `json:"step"`
			Epsilon *JSONFloat `json:"epsilon"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if m.Type == "eval" {
			evals++
		}
		if m.Type != "step" || m.Epsilon == nil {
			continue
		}
		withEps++
		if m.Step%2 != 0 {
			t.Errorf("step %d carries ε off the log cadence", m.Step)
		}
		var led accounting.Ledger
		led.RecordN(accounting.Step(s.SamplingRate, s.NoiseMultiplier), m.Step)
		want, _ := led.Epsilon(accounting.KindPLD, s.Delta)
		if math.Abs(float64(*m.Epsilon)-want) > 1e-12 {
			t.Errorf("step %d: ε %v, ledger of %d steps %v", m.Step, *m.Epsilon, m.Step, want)
		}
	}
	if withEps != 4 {
		t.Errorf("%d step lines carry ε, want 4 (every 2 of 8 steps)", withEps)
	}
	if evals != 4 {
		t.Errorf("%d evaluations, want 4 (every ⌈8/4⌉ steps, the last at the end)", evals)
	}
	for _, f := range []string{"epsilon.png", "accuracy.png", "loss.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
