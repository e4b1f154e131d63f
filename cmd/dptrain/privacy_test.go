package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// privacy runs `dptrain privacy args…` and returns stdout, stderr, error.
func privacy(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := runPrivacy(args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestPrivacyEpsilonJSON(t *testing.T) {
	// dp_accounting 0.6 (accounting/testdata/accounting.json): q=0.01, σ=1, T=1000, δ=1e-5:
	// RDP ε = 2.101366525420273 at order 7.8; PLD ε = 1.828243645616618.
	cases := []struct {
		accountant string
		eps        float64
		order      any
	}{
		{"rdp", 2.101366525420273, 7.8},
		{"pld", 1.828243645616618, nil},
	}
	for _, c := range cases {
		out, _, err := privacy("epsilon", "--sampling-rate", "0.01", "--steps", "1000",
			"--noise-multiplier", "1", "--delta", "1e-5", "--accountant", c.accountant, "--json")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Fatalf("want exactly one JSON line, got %q", out)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%v: %q", err, out)
		}
		for _, k := range []string{"epsilon", "delta", "accountant", "order"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: key %q missing in %s", c.accountant, k, out)
			}
		}
		if got := m["epsilon"].(float64); math.Abs(got-c.eps) > 1e-6*c.eps {
			t.Errorf("%s: epsilon %v, want %v", c.accountant, got, c.eps)
		}
		if m["accountant"] != c.accountant || m["delta"] != 1e-5 || m["order"] != c.order {
			t.Errorf("%s: got %s", c.accountant, out)
		}
		if c.accountant == "pld" && m["rdp_epsilon"] == nil {
			t.Errorf("pld: rdp_epsilon missing: %s", out)
		}
	}
}

func TestPrivacyEpsilonDatasetForm(t *testing.T) {
	// The paper's recipe: steps = ceil(70·1281167/65536) = 1369; dp_accounting
	// gives RDP ε = 9.9767, PLD ε = 9.2936.
	out, _, err := privacy("epsilon", "--dataset-size", "1281167", "--batch-size", "65536", "--epochs", "70",
		"--noise-multiplier", "1.3127", "--delta", "1e-6", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Epsilon, RDPEpsilon, SamplingRate float64
		Steps                             int
	}
	if err := json.Unmarshal([]byte(out), &struct {
		Epsilon      *float64 `json:"epsilon"`
		RDPEpsilon   *float64 `json:"rdp_epsilon"`
		SamplingRate *float64 `json:"sampling_rate"`
		Steps        *int     `json:"steps"`
	}{&r.Epsilon, &r.RDPEpsilon, &r.SamplingRate, &r.Steps}); err != nil {
		t.Fatal(err)
	}
	if r.Steps != 1369 || r.SamplingRate != 65536.0/1281167 {
		t.Errorf("steps %d, q %v; want 1369, %v", r.Steps, r.SamplingRate, 65536.0/1281167)
	}
	if math.Abs(r.Epsilon-9.2936) > 1e-3 || math.Abs(r.RDPEpsilon-9.9767) > 1e-3 {
		t.Errorf("ε = %v (PLD), %v (RDP); want 9.2936, 9.9767", r.Epsilon, r.RDPEpsilon)
	}
	// Human output names both accountants.
	out, _, err = privacy("epsilon", "--dataset-size", "1281167", "--batch-size", "65536", "--epochs", "70",
		"--noise-multiplier", "1.3127", "--delta", "1e-6")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ε = 9.2936", "PLD", "RDP accountant: ε = 9.9767", "1369 steps"} {
		if !strings.Contains(out, want) {
			t.Errorf("human output lacks %q:\n%s", want, out)
		}
	}
}

func TestPrivacyCalibrate(t *testing.T) {
	// dp_accounting's calibration point: N=1281167, B=4096, 3127 steps,
	// δ=1e-6, ε ≤ 4 under RDP needs σ = 0.68512 (bisection to 1e-4).
	out, _, err := privacy("calibrate", "--epsilon", "4", "--delta", "1e-6", "--sampling-rate",
		"0.0031970851575165455", "--steps", "3127", "--accountant", "rdp", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		NoiseMultiplier float64 `json:"noise_multiplier"`
		Epsilon         float64 `json:"epsilon"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.NoiseMultiplier-0.68511962890625) > 2e-4 {
		t.Errorf("σ = %v, want 0.68512 ± 2e-4", r.NoiseMultiplier)
	}
	if r.Epsilon > 4 || r.Epsilon < 3.99 {
		t.Errorf("ε = %v, want just below 4", r.Epsilon)
	}
}

func TestPrivacyCalibrateHumanPLD(t *testing.T) {
	if testing.Short() {
		t.Skip("PLD calibration takes a few seconds")
	}
	out, _, err := privacy("calibrate", "--epsilon", "3", "--delta", "1e-5", "--dataset-size", "60000",
		"--batch-size", "256", "--epochs", "10")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"noise multiplier σ =", "≤ 3", "PLD", "RDP accountant at this σ"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPrivacyFlagErrors(t *testing.T) {
	base := []string{"--noise-multiplier", "1", "--delta", "1e-5"}
	cases := []struct {
		name string
		args []string
		want string // substring of the error, "" for errUsage
	}{
		{"no subcommand", nil, ""},
		{"unknown subcommand", []string{"budget"}, ""},
		{"missing delta", []string{"epsilon", "--noise-multiplier", "1", "--sampling-rate", "0.1", "--steps", "3"}, "--delta"},
		{"missing sigma", []string{"epsilon", "--delta", "1e-5", "--sampling-rate", "0.1", "--steps", "3"}, "--noise-multiplier"},
		{"missing steps", append([]string{"epsilon", "--sampling-rate", "0.1"}, base...), "--steps"},
		{"missing schedule", append([]string{"epsilon"}, base...), "--sampling-rate"},
		{"both schedules", append([]string{"epsilon", "--sampling-rate", "0.1", "--steps", "3", "--epochs", "2"}, base...), "--epochs"},
		{"partial dataset", append([]string{"epsilon", "--dataset-size", "100", "--epochs", "2"}, base...), "--batch-size"},
		{"batch > dataset (epsilon)", append([]string{"epsilon", "--dataset-size", "100", "--batch-size", "200", "--epochs", "2"}, base...), "--batch-size"},
		{"q out of range", append([]string{"epsilon", "--sampling-rate", "1.5", "--steps", "3"}, base...), "--sampling-rate=1.5"},
		{"negative steps", append([]string{"epsilon", "--sampling-rate", "0.1", "--steps", "-3"}, base...), "--steps=-3"},
		{"bad delta", []string{"epsilon", "--noise-multiplier", "1", "--delta", "1", "--sampling-rate", "0.1", "--steps", "3"}, "--delta=1"},
		{"bad sigma", []string{"epsilon", "--noise-multiplier", "0", "--delta", "1e-5", "--sampling-rate", "0.1", "--steps", "3"}, "--noise-multiplier=0"},
		{"bad accountant", append([]string{"epsilon", "--sampling-rate", "0.1", "--steps", "3", "--accountant", "prv"}, base...), "--accountant"},
		{"sigma in calibrate", []string{"calibrate", "--noise-multiplier", "1"}, ""},
		{"missing target", []string{"calibrate", "--delta", "1e-5", "--sampling-rate", "0.1", "--steps", "3"}, "--epsilon"},
		{"zero steps calibrate", []string{"calibrate", "--epsilon", "1", "--delta", "1e-5", "--sampling-rate", "0.1", "--steps", "0"}, "--steps=0"},
		{"unreachable", []string{"calibrate", "--epsilon", "1e-9", "--delta", "1e-5", "--sampling-rate", "1", "--steps", "1000000", "--accountant", "rdp"}, "cannot be met"},
		{"stray argument", append([]string{"epsilon", "--sampling-rate", "0.1", "--steps", "3", "extra"}, base...), "extra"},
	}
	for _, c := range cases {
		out, _, err := privacy(c.args...)
		if err == nil {
			t.Errorf("%s: no error (stdout %q)", c.name, out)
			continue
		}
		if out != "" {
			t.Errorf("%s: wrote to stdout on error: %q", c.name, out)
		}
		if c.want == "" {
			if !errors.Is(err, errUsage) {
				t.Errorf("%s: error %v, want usage error", c.name, err)
			}
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not name %q", c.name, err, c.want)
		}
	}
}

func TestPrivacyHelp(t *testing.T) {
	out, _, err := privacy("--help")
	if err != nil || !strings.Contains(out, "privacy calibrate") {
		t.Errorf("help: err %v, out %q", err, out)
	}
	_, stderr, err := privacy("epsilon", "-h")
	if err != nil || !strings.Contains(stderr, "-noise-multiplier") {
		t.Errorf("epsilon -h: err %v, stderr %q", err, stderr)
	}
}
