package featcache

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	helperModeEnv = "DPTRAIN_FEATCACHE_HELPER_MODE"
	helperPathEnv = "DPTRAIN_FEATCACHE_HELPER_PATH"
	helperReady   = "featcache-helper: ready"
)

// TestHelperProcess is the child process of the SIGKILL tests. It builds
// testSpec at $DPTRAIN_FEATCACHE_HELPER_PATH and, at the point named by
// $DPTRAIN_FEATCACHE_HELPER_MODE ("chunks": once chunks 0, 1 and 2 are
// persisted; "before-rename", "after-rename": at that stage of the final
// assembly), prints helperReady and blocks reading stdin until it is
// killed. It exits if stdin reaches EOF (the parent died).
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperModeEnv)
	if mode == "" {
		t.Skip("child process of the SIGKILL tests")
	}
	block := func() {
		fmt.Println(helperReady)
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}
	opt := BuildOptions{ChunkSize: testChunk}
	switch mode {
	case "chunks":
		opt.Progress = func(done, total int) {
			if done == 3*testChunk {
				block()
			}
		}
	case "before-rename", "after-rename":
		testHook = func(stage string) {
			if stage == mode {
				block()
			}
		}
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	spec := testSpec()
	if err := Build(os.Getenv(helperPathEnv), spec, opt, testFill(t, spec)); err != nil {
		t.Fatal(err)
	}
	t.Fatal("Build finished: the helper was not stopped")
}

// killAt runs TestHelperProcess in mode, waits until it reports that it
// reached the point of the mode, and kills it with SIGKILL.
func killAt(t *testing.T, mode, path string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperModeEnv+"="+mode, helperPathEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := false
	var out []string
	for sc := bufio.NewScanner(stdout); sc.Scan(); {
		if sc.Text() == helperReady {
			ready = true
			break
		}
		out = append(out, sc.Text())
	}
	if err := cmd.Process.Kill(); err != nil && ready {
		t.Fatal(err)
	}
	werr := cmd.Wait()
	if !ready {
		t.Fatalf("helper exited (%v) without reaching %q:\n%s\n%s", werr, mode, strings.Join(out, "\n"), stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
		t.Fatalf("helper was not killed by a signal: %v", werr)
	}
}

func TestSIGKILLDuringChunks(t *testing.T) {
	spec := testSpec()
	clean := cleanBuild(t, spec, testChunk)
	path := filepath.Join(t.TempDir(), "c.feat")
	killAt(t, "chunks", path)
	assertAbsent(t, path)
	var los []int
	if err := Build(path, spec, BuildOptions{ChunkSize: testChunk}, countingFill(testFill(t, spec), &los)); err != nil {
		t.Fatal(err)
	}
	if want := []int{15, 20}; !slices.Equal(los, want) {
		t.Fatalf("resumed Build called fill for lo = %v, want %v (chunks 0-2 were finished by the killed process)", los, want)
	}
	assertSameFile(t, path, clean)
	assertAbsent(t, PartialDir(path))
}

func TestSIGKILLDuringAssembly(t *testing.T) {
	spec := testSpec()
	clean := cleanBuild(t, spec, testChunk)
	for _, tc := range []struct {
		stage    string
		wantFile bool // a complete file at path after the kill
		leftover string
	}{
		{"before-rename", false, ".c.feat.tmp-"}, // the synced temporary file
		{"after-rename", true, "c.feat.partial"}, // the partial directory
	} {
		t.Run(tc.stage, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "c.feat")
			killAt(t, tc.stage, path)
			// The file is either absent or complete and valid; which one is
			// fixed by the stage.
			if tc.wantFile {
				checkContents(t, path, spec)
				assertSameFile(t, path, clean)
			} else {
				assertAbsent(t, path)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(entries, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), tc.leftover) }) {
				t.Fatalf("no %s* left by the killed build", tc.leftover)
			}
			var los []int
			if err := Build(path, spec, BuildOptions{ChunkSize: testChunk}, countingFill(testFill(t, spec), &los)); err != nil {
				t.Fatal(err)
			}
			if len(los) != 0 {
				t.Fatalf("resumed Build called fill for lo = %v, want no calls (every chunk was finished)", los)
			}
			assertSameFile(t, path, clean)
			entries, err = os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 {
				t.Fatalf("directory holds %d entries after Build, want only %s (temporary file or partial directory left)", len(entries), path)
			}
		})
	}
}
