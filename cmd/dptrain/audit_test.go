package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dptrain/internal/fault"
	"dptrain/internal/synthdata"
)

func TestAuditCLIErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("model: cnn-mnist\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "--out", dir}, "--config"},
		{[]string{"audit", "--config", cfg, "--canaries", "1", "--out", dir}, "--canaries"},
		{[]string{"audit", "--config", cfg, "--canaries=many", "--out", dir}, "--canaries"},
		{[]string{"audit", "--config", cfg, "--significance", "2", "--out", dir}, "--significance"},
		{[]string{"audit", "--config", cfg, "--fail-if-exceeded=maybe", "--out", dir}, "--fail-if-exceeded"},
		{[]string{"audit", "--config", cfg, "--kind", "grey", "--out", dir}, "audit.kind"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want non-zero and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// TestAuditCLIFailsBrokenMechanism: with --fail-if-exceeded, an audit of
// a mechanism that puts the canaries in every batch with a tenth of the
// noise exits non-zero with a plain message, after writing audit.json;
// the correct mechanism exits 0.
func TestAuditCLIFailsBrokenMechanism(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "cifar")
	if err := synthdata.WriteCIFAR10(data, 120, 20, 4); err != nil {
		t.Fatal(err)
	}
	base := []string{"audit", "--model=cnn-cifar", "--train-data=cifar10:" + data, "--batch-size=8", "--steps=10",
		"--clip-norm=1", "--noise-multiplier=1", "--learning-rate=0.1", "--delta=1e-3", "--noise=seeded", "--canaries", "200", "--fail-if-exceeded"}
	for _, broken := range []bool{false, true} {
		out := filepath.Join(dir, "run"+map[bool]string{false: "ok", true: "broken"}[broken])
		args := append(append([]string(nil), base...), "--out", out)
		cfg := filepath.Join(dir, "empty.yaml")
		os.WriteFile(cfg, []byte("{}\n"), 0o644)
		args = append(args, "--config", cfg)
		if broken {
			fault.Injected = fault.Mechanism{CanariesEveryStep: true, NoiseScale: 0.1}
		}
		var stdout, errb bytes.Buffer
		code := run(args, &stdout, &errb)
		fault.Injected = fault.Mechanism{}
		if _, err := os.Stat(filepath.Join(out, "audit.json")); err != nil {
			t.Fatalf("broken=%v: no audit.json: %v (stderr %s)", broken, err, errb.String())
		}
		if !strings.Contains(stdout.String(), "audit: 200 canaries") {
			t.Errorf("broken=%v: no audit line on stdout:\n%s", broken, stdout.String())
		}
		if broken {
			if code == 0 || !strings.Contains(errb.String(), "exceeds the ε the ledger claims") || !strings.Contains(stdout.String(), "EXCEEDED") {
				t.Fatalf("broken mechanism: exit %d, stdout %q, stderr %q", code, stdout.String(), errb.String())
			}
		} else if code != 0 {
			t.Fatalf("correct mechanism: exit %d: %s", code, errb.String())
		}
	}
}
