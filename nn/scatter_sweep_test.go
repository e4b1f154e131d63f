package nn_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"dptrain/nn"
	"dptrain/tensor"
	"dptrain/train"
)

// TestScatterNetSweep runs several training runs of a ScatterNet model in
// one process, so that the memoised scattering maps (shared by layers of
// the same configuration) are computed once rather than once per run. It
// is a tool for hyper-parameter sweeps, off unless DPTRAIN_SCATTER_SWEEP
// names a sweep file: the base config path on the first line, then one run
// per line as space-separated key=value overrides (YAML values, as the
// command line's --key=value flags). Each run writes its usual output to
// $DPTRAIN_SCATTER_SWEEP_OUT/<line number> (default a temporary folder) and
// one result line to the test log. The file is read again before each
// run, so runs can be appended while it goes. Relative paths (sweep file,
// configs, data) are taken from $DPTRAIN_SCATTER_SWEEP_CWD when set, else
// from the package folder. Example, from the repository root:
//
//	DPTRAIN_SCATTER_SWEEP=sweep.txt DPTRAIN_SCATTER_SWEEP_CWD=$PWD go test ./nn -run ScatterNetSweep -v -timeout 0
//
// The sweep itself spends privacy: report only the runs you would have run
// anyway, or account for the selection.
func TestScatterNetSweep(t *testing.T) {
	path := os.Getenv("DPTRAIN_SCATTER_SWEEP")
	if path == "" {
		t.Skip("set DPTRAIN_SCATTER_SWEEP to a sweep file to run")
	}
	if dir := os.Getenv("DPTRAIN_SCATTER_SWEEP_CWD"); dir != "" {
		t.Chdir(dir) // relative data paths in configs, as for dptrain run from dir
	}
	lines := readSweep(t, path)
	if len(lines) < 2 {
		t.Fatalf("%s: want a base config line and at least one run line", path)
	}
	out := os.Getenv("DPTRAIN_SCATTER_SWEEP_OUT")
	if out == "" {
		out = t.TempDir()
	}
	// Hold one layer of the models' configuration for the whole sweep, so
	// the shared memo outlives each run's model.
	keep := nn.NewScattering(3, 32, 32, 2, 8)
	keep.CacheBytes = 3 << 30
	keep.Forward(tensor.New(1, 3, 32, 32), false)
	defer runtime.KeepAlive(keep)
	// The file is read again before each run: lines appended while the
	// sweep runs are picked up.
	for i := 0; i+1 < len(lines); i, lines = i+1, readSweep(t, path) {
		line := lines[i+1]
		cfg, err := train.LoadConfigFile(lines[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range strings.Fields(line) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("%s: run %d: %q is not key=value", path, i+1, kv)
			}
			if err := cfg.ApplyOverride(k, v); err != nil {
				t.Fatal(err)
			}
		}
		dir := filepath.Join(out, fmt.Sprint(i+1))
		s, err := train.Run(cfg, train.Options{Out: dir, Log: os.Stderr})
		if err != nil {
			t.Fatalf("run %d (%s): %v", i+1, line, err)
		}
		h, m, e := keep.CacheStats()
		t.Logf("run %d [%s]: test accuracy %.4f, ε=%.4f (%s; RDP %.4f), σ=%.4g, %d steps, %.0f s (memo: %d hits, %d misses, %d entries) → %s",
			i+1, line, s.TestAccuracy, s.Epsilon, s.Accountant, s.EpsilonRDP, s.NoiseMultiplier, s.Steps, s.WallSeconds, h, m, e, dir)
	}
}

func readSweep(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
