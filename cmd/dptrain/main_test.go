package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dptrain/internal/synthdata"
)

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestTrainCLIErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("model: cnn-mnist\nbad_key: 3\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"train", "--config", cfg, "--out", dir}, "bad_key"},
		{[]string{"train", "--config", filepath.Join(dir, "missing.yaml"), "--out", dir}, "missing.yaml"},
		{[]string{"train", "--model=cnn-mnist"}, "--out"},
		{[]string{"train", "--colour=red", "--out", dir}, "unknown flag --colour"},
		{[]string{"train", "--model=cnn-mnist", "--train-data=mnist:/nonexistent", "--batch-size=10", "--epochs=1", "--clip-norm=1", "--noise-multiplier=1", "--target-epsilon=2", "--learning-rate=0.1", "--out", dir}, "both set"},
		{[]string{"nosuch"}, "unknown command"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// TestBenchJSON: bench --json prints one object with the rates, and its
// private step draws the noise training uses by default (secure) unless
// --noise says otherwise.
func TestBenchJSON(t *testing.T) {
	for _, tc := range []struct{ flag, want string }{{"", "secure"}, {"--noise=seeded", "seeded"}, {"--noise=secure", "secure"}} {
		args := []string{"bench", "--model", "cnn-mnist", "--image-size", "28", "--batch-size", "8", "--steps", "1", "--json"}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		var m map[string]any
		if err := json.Unmarshal(out.Bytes(), &m); err != nil {
			t.Fatalf("not one JSON object: %v\n%s", err, out.String())
		}
		for _, k := range []string{"model", "batch_size", "image_size", "private_examples_per_sec", "nonprivate_examples_per_sec", "overhead", "peak_rss_mib", "noise"} {
			if _, ok := m[k]; !ok {
				t.Errorf("bench --json lacks %q", k)
			}
		}
		if v, _ := m["private_examples_per_sec"].(float64); v <= 0 {
			t.Errorf("private_examples_per_sec %v", m["private_examples_per_sec"])
		}
		if m["noise"] != tc.want {
			t.Errorf("%v: noise %v, want %q", args, m["noise"], tc.want)
		}
	}
}

// TestTrainPrintsGuaranteeConditions: the "privacy spent" line of a seeded
// run is followed by the condition that the seed stays secret; a secure
// run (the default) states ε with no condition.
func TestTrainPrintsGuaranteeConditions(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "cifar")
	if err := synthdata.WriteCIFAR10(data, 120, 20, 4); err != nil {
		t.Fatal(err)
	}
	base := []string{"train", "--model=cnn-cifar", "--train-data=cifar10:" + data, "--batch-size=8", "--steps=2",
		"--clip-norm=1", "--noise-multiplier=1", "--learning-rate=0.1", "--delta=1e-3"}
	for _, tc := range []struct {
		noise string
		want  bool
	}{{"", false}, {"--noise=secure", false}, {"--noise=seeded", true}} {
		args := append(append([]string(nil), base...), "--out", filepath.Join(dir, "run"+tc.noise))
		if tc.noise != "" {
			args = append(args, tc.noise)
		}
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		if !strings.Contains(out.String(), "privacy spent: ε = ") {
			t.Fatalf("no privacy line:\n%s", out.String())
		}
		if got := strings.Contains(out.String(), "holds only if: The seed stays secret"); got != tc.want {
			t.Errorf("noise %q: condition printed %v, want %v:\n%s", tc.noise, got, tc.want, out.String())
		}
	}
}
