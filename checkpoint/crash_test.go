package checkpoint

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashDirEnv = "DPTRAIN_CHECKPOINT_CRASH_DIR"

// crashScale sizes the checkpoints of the crash test (about 1 MB each).
const crashScale = 64

// TestCrashWriter is the child process of TestCrashResume: it resumes from
// the newest valid checkpoint and saves forever, like a trainer that
// checkpoints every step, until it is killed. Every third step is saved twice
// to exercise replacement.
func TestCrashWriter(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrashResume")
	}
	ck, _, skipped, err := LoadLatest(dir)
	var step int64
	switch {
	case errors.Is(err, ErrNoCheckpoint):
	case err != nil:
		t.Fatal(err)
	default:
		step = ck.Step + 1
	}
	if len(skipped) != 0 {
		t.Fatalf("skipped %v", skipped)
	}
	for ; ; step++ {
		ck := makeCheckpoint(step, crashScale)
		if _, err := Save(dir, ck); err != nil {
			t.Fatal(err)
		}
		if step%3 == 0 {
			if _, err := Save(dir, ck); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Prune(dir, 2); err != nil {
			t.Fatal(err)
		}
		fmt.Println("saved", step) // tells the parent that a save completed
	}
}

// TestCrashResume kills a checkpointing process with SIGKILL at random
// moments and checks after each kill that LoadLatest finds a complete,
// checksum-valid checkpoint with exactly the contents saved for its step,
// reports nothing corrupt, and holds every save the writer reported done.
func TestCrashResume(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	rounds := 40
	if testing.Short() {
		rounds = 12
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(2024, 11))
	prev := int64(-1)
	leftovers := 0
	for r := range rounds {
		var out, errOut bytes.Buffer // stdout lines (read by us), stderr
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		cmd.Stderr = &errOut
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for one completed save (however slow the machine), then kill
		// at a random moment of the following ones.
		saved := make(chan bool, 1)
		reported := int64(-1) // the last step the writer reported saved
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				out.WriteString(sc.Text() + "\n")
				if n, err := fmt.Sscanf(sc.Text(), "saved %d", &reported); n == 1 && err == nil && len(saved) == 0 {
					saved <- true
				}
			}
			close(saved)
		}()
		<-saved
		time.Sleep(time.Duration(rng.IntN(100_000)) * time.Microsecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		for range saved { // until the reader has seen EOF
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: writer ended by %v, not by SIGKILL:\n%s%s", r, err, out.String(), errOut.String())
		}
		des, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range des {
			if strings.HasPrefix(de.Name(), ".") {
				leftovers++
			}
		}

		ck, path, skipped, err := LoadLatest(dir)
		if err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
		if len(skipped) != 0 {
			t.Fatalf("round %d: corrupt checkpoints visible after SIGKILL: %v", r, skipped)
		}
		if ck.Step < reported {
			t.Fatalf("round %d: newest valid step %d, but the writer reported step %d saved", r, ck.Step, reported)
		}
		if ck.Step <= prev {
			t.Fatalf("round %d: newest valid step %d, want more than the previous round's %d", r, ck.Step, prev)
		}
		checkSame(t, ck, makeCheckpoint(ck.Step, crashScale))
		t.Logf("round %d: resumed at step %d (%s)", r, ck.Step, path)
		prev = ck.Step
	}
	// Kills land mid-write (a temporary, set-aside or deleted directory left
	// behind) in most rounds, since the writer spends nearly all its time in
	// Save and Prune.
	t.Logf("%d of %d kills left an interrupted write behind", leftovers, rounds)
	if leftovers == 0 {
		t.Errorf("no kill interrupted a write: the test did not exercise crashes")
	}
}
