//go:build mpi

package main

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"dptrain/checkpoint"
	"dptrain/train"
)

// mpirun returns `mpirun -np np <this test binary as dptrain> args…`, or
// skips the test when Open MPI is not installed (fails instead with
// DPTRAIN_REQUIRE_MPI set, as in CI).
func mpirun(t *testing.T, ctx context.Context, np int, args ...string) *exec.Cmd {
	t.Helper()
	path, err := exec.LookPath("mpirun")
	if err != nil {
		if os.Getenv("DPTRAIN_REQUIRE_MPI") != "" {
			t.Fatalf("mpirun: %v (DPTRAIN_REQUIRE_MPI is set; apt-get install openmpi-bin libopenmpi-dev)", err)
		}
		t.Skipf("mpirun not found (%v): apt-get install openmpi-bin libopenmpi-dev", err)
	}
	a := []string{"--allow-run-as-root", "--oversubscribe", "-np", strconv.Itoa(np), "-x", "DPTRAIN_TEST_MAIN", os.Args[0]}
	cmd := exec.CommandContext(ctx, path, append(a, args...)...)
	cmd.Env = append(os.Environ(), "DPTRAIN_TEST_MAIN=1")
	return cmd
}

// mpiTrainArgs runs `dptrain train` on np ranks and fails on an error.
func mpiTrainArgs(t *testing.T, np int, cfgPath, out string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var o bytes.Buffer
	cmd := mpirun(t, ctx, np, append([]string{"train", "--config", cfgPath, "--out", out}, extra...)...)
	cmd.Stdout, cmd.Stderr = &o, &o
	if err := cmd.Run(); err != nil {
		t.Fatalf("mpirun -np %d dptrain train: %v\n%s", np, err, o.String())
	}
	return o.String()
}

func latestCheckpoint(t *testing.T, out string) *checkpoint.Checkpoint {
	t.Helper()
	ck, _, _, err := checkpoint.LoadLatest(filepath.Join(out, "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

// bitsEqual compares every tensor of two checkpoints bit for bit.
func bitsEqual(a, b *checkpoint.Checkpoint) error {
	for g, ts := range a.Tensors {
		for name, w := range ts {
			o := b.Tensors[g][name]
			if len(o.Data) != len(w.Data) {
				return errors.New(g + "/" + name + ": missing or of another size")
			}
			for i := range w.Data {
				if math.Float32bits(w.Data[i]) != math.Float32bits(o.Data[i]) {
					return errors.New(g + "/" + name + "[" + strconv.Itoa(i) + "] differs")
				}
			}
		}
	}
	return nil
}

// TestMPITrain runs `dptrain train` under mpirun on 2 ranks (Open MPI, the
// mpi build): it trains the model one process trains, with the same ledger
// and ε, up to float32 summation order; two 2-rank runs are bit-identical;
// a rank SIGKILLed at a random moment ends the job with an error, and
// re-running the command resumes and ends bit-identical to the
// uninterrupted 2-rank run.
func TestMPITrain(t *testing.T) {
	dir := t.TempDir()
	cfgPath := killConfig(t, dir, "seeded")
	// 10 steps: the comparison with one process is of summation order
	// only; over more steps of this tiny-batch run a last-bit difference
	// can flip a max-pool's choice and grow (4.7e-4 by step 20).
	one, a10 := filepath.Join(dir, "one"), filepath.Join(dir, "mpi-10")
	var stdout, stderr bytes.Buffer
	if err := runTrain([]string{"--config", cfgPath, "--out", one, "--steps=10"}, &stdout, &stderr); err != nil {
		t.Fatalf("one process: %v\n%s", err, stderr.String())
	}
	log := mpiTrainArgs(t, 2, cfgPath, a10, "--steps=10")
	if !strings.Contains(log, "2 ranks") {
		t.Errorf("the 2-rank run's log does not say it ran on 2 ranks:\n%s", log)
	}
	ck1, ck10 := latestCheckpoint(t, one), latestCheckpoint(t, a10)
	if ck10.Step != ck1.Step || !bytes.Equal(ck10.Blobs["ledger.json"], ck1.Blobs["ledger.json"]) {
		t.Fatalf("2 ranks: step %d, ledger %s; one process: step %d, ledger %s", ck10.Step, ck10.Blobs["ledger.json"], ck1.Step, ck1.Blobs["ledger.json"])
	}
	var d, m float64
	for name, w := range ck1.Tensors["weights"] {
		for i, v := range w.Data {
			d = max(d, math.Abs(float64(v)-float64(ck10.Tensors["weights"][name].Data[i])))
			m = max(m, math.Abs(float64(v)))
		}
	}
	t.Logf("2 ranks vs one process after %d steps: weights within %.3g (relative max)", ck1.Step, d/m)
	if d > 1e-5*m {
		t.Fatalf("2 ranks vs one process: weights %.3g apart (relative max): more than summation order", d/m)
	}
	var s10, s1 train.Summary
	readJSON(t, filepath.Join(a10, "summary.json"), &s10)
	readJSON(t, filepath.Join(one, "summary.json"), &s1)
	if float64(s10.Epsilon) != float64(s1.Epsilon) {
		t.Fatalf("ε: 2 ranks %g, one process %g", float64(s10.Epsilon), float64(s1.Epsilon))
	}

	// The whole run twice on 2 ranks: bit-identical.
	a, b := filepath.Join(dir, "mpi-a"), filepath.Join(dir, "mpi-b")
	t0 := time.Now()
	mpiTrainArgs(t, 2, cfgPath, a, "--steps=20")
	span := time.Since(t0)
	mpiTrainArgs(t, 2, cfgPath, b, "--steps=20")
	cka, ckb := latestCheckpoint(t, a), latestCheckpoint(t, b)
	if err := bitsEqual(cka, ckb); err != nil {
		t.Fatalf("two 2-rank runs: %v", err)
	}
	if !bytes.Equal(cka.Blobs["ledger.json"], ckb.Blobs["ledger.json"]) {
		t.Fatal("two 2-rank runs: ledgers differ")
	}
	var sa train.Summary
	readJSON(t, filepath.Join(a, "summary.json"), &sa)

	// SIGKILL one rank at a random moment of the run.
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill-time seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 2))
	k := filepath.Join(dir, "killed")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var o bytes.Buffer
	cmd := mpirun(t, ctx, 2, "train", "--config", cfgPath, "--out", k, "--steps=20")
	cmd.Stdout, cmd.Stderr = &o, &o
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed := false
	select {
	case err := <-exited:
		t.Logf("the run ended before the kill (%v)", err)
	case <-time.After(span/5 + time.Duration(r.Int64N(int64(span)/2))):
		ranks := childPIDs(cmd.Process.Pid)
		if len(ranks) == 0 {
			t.Fatalf("no rank processes under mpirun (pid %d)", cmd.Process.Pid)
		}
		victim := ranks[r.IntN(len(ranks))]
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed = true
		killedAt := time.Now()
		err := <-exited
		if ctx.Err() != nil {
			t.Fatalf("mpirun did not end within 2 minutes of a rank's SIGKILL (a hang)\n%s", o.String())
		}
		if err == nil {
			t.Fatalf("mpirun exited 0 after a rank was SIGKILLed\n%s", o.String())
		}
		t.Logf("rank pid %d SIGKILLed: mpirun ended (%v) %.1f s later", victim, err, time.Since(killedAt).Seconds())
	}
	mpiTrainArgs(t, 2, cfgPath, k, "--steps=20")
	if err := bitsEqual(cka, latestCheckpoint(t, k)); err != nil {
		t.Fatalf("killed (%v) and resumed vs uninterrupted 2-rank run: %v", killed, err)
	}
	var sk train.Summary
	readJSON(t, filepath.Join(k, "summary.json"), &sk)
	if float64(sk.Epsilon) != float64(sa.Epsilon) {
		t.Fatalf("ε after the kill %g, uninterrupted %g", float64(sk.Epsilon), float64(sa.Epsilon))
	}

	// SIGTERM delivered to every rank (as Slurm's --signal does): all stop
	// after the same step with a checkpoint; the rerun ends where the
	// uninterrupted run ends.
	g := filepath.Join(dir, "term")
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel2()
	var o2 bytes.Buffer
	cmd = mpirun(t, ctx2, 2, "train", "--config", cfgPath, "--out", g, "--steps=20")
	cmd.Stdout, cmd.Stderr = &o2, &o2
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		t.Logf("the run ended before SIGTERM (%v)", err)
	case <-time.After(span/4 + time.Duration(r.Int64N(int64(span)/3))):
		for _, p := range childPIDs(cmd.Process.Pid) {
			_ = syscall.Kill(p, syscall.SIGTERM)
		}
		err := <-exited
		if ctx2.Err() != nil {
			t.Fatalf("mpirun did not end within 2 minutes of SIGTERM to the ranks\n%s", o2.String())
		}
		if err == nil && !strings.Contains(o2.String(), "interrupted at step") {
			t.Logf("SIGTERM arrived after the last step:\n%s", o2.String())
		} else if !strings.Contains(o2.String(), "interrupted at step") {
			t.Fatalf("SIGTERM to the ranks: %v, without the interruption message\n%s", err, o2.String())
		} else {
			t.Logf("SIGTERM to the ranks: mpirun %v; checkpoint at step %d", err, latestCheckpoint(t, g).Step)
		}
	}
	mpiTrainArgs(t, 2, cfgPath, g, "--steps=20")
	if err := bitsEqual(cka, latestCheckpoint(t, g)); err != nil {
		t.Fatalf("SIGTERM and resumed vs uninterrupted 2-rank run: %v", err)
	}
}

// childPIDs lists the processes whose parent is pid (Linux /proc).
func childPIDs(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces; parse after ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) > 1 {
			if pp, _ := strconv.Atoi(f[1]); pp == pid {
				out = append(out, p)
			}
		}
	}
	return out
}
