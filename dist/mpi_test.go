//go:build mpi

package dist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Environment of the MPI workers: DPTRAIN_DIST_WORKER selects the mode
// ("check" or "kill"), DPTRAIN_DIST_OUT the directory for their results;
// DPTRAIN_DIST_BENCH=1 runs the benchmark instead.
const (
	envWorker = "DPTRAIN_DIST_WORKER"
	envOut    = "DPTRAIN_DIST_OUT"
	envBench  = "DPTRAIN_DIST_BENCH"
)

// mpirun returns the path of mpirun, or skips the test (fails it when
// DPTRAIN_REQUIRE_MPI is set).
func mpirun(t *testing.T) string {
	t.Helper()
	if os.Getenv("OMPI_COMM_WORLD_SIZE") != "" {
		t.Skip("already running under mpirun")
	}
	p, err := exec.LookPath("mpirun")
	if err != nil {
		if os.Getenv("DPTRAIN_REQUIRE_MPI") != "" {
			t.Fatalf("DPTRAIN_REQUIRE_MPI is set but mpirun is not on PATH: %v", err)
		}
		t.Skip("mpirun is not on PATH (set DPTRAIN_REQUIRE_MPI=1 to make this a failure)")
	}
	return p
}

// workerCmd runs this test binary's TestMPIWorker on np ranks.
func workerCmd(ctx context.Context, t *testing.T, np int, mode, out string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, mpirun(t), "--allow-run-as-root", "--oversubscribe", "-np", strconv.Itoa(np),
		"-x", envWorker, "-x", envOut,
		os.Args[0], "-test.run=^TestMPIWorker$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), envWorker+"="+mode, envOut+"="+out)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// TestMPI runs runCases under mpirun on 2 and 3 ranks, once with whole
// messages and once with messages split into pieces of 1000 bytes, and
// checks that every rank's results are bit-identical to a Local group's.
func TestMPI(t *testing.T) {
	for _, np := range []int{2, 3} {
		t.Run(fmt.Sprintf("np=%d", np), func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			out, err := workerCmd(ctx, t, np, "check", dir).CombinedOutput()
			if err != nil {
				t.Fatalf("mpirun: %v\n%s", err, out)
			}
			local := make([]map[string]string, np)
			errs := runGroup(t, Local(np), func(c Comm) (err error) {
				local[c.Rank()], err = runCases(c)
				return err
			})
			for r := range np {
				if errs[r] != nil {
					t.Fatalf("Local rank %d: %v", r, errs[r])
				}
				for _, pass := range []string{"whole", "split"} {
					var got map[string]string
					b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("rank%d-%s.json", r, pass)))
					if err != nil {
						t.Fatalf("%v\nmpirun output:\n%s", err, out)
					}
					if err := json.Unmarshal(b, &got); err != nil {
						t.Fatal(err)
					}
					if len(got) != len(local[r]) {
						t.Fatalf("rank %d %s: %d results, Local has %d", r, pass, len(got), len(local[r]))
					}
					for k, want := range local[r] {
						if got[k] != want {
							t.Errorf("rank %d %s: case %s: MPI %q, Local %q", r, pass, k, got[k], want)
						}
						if got[k] != local[0][k] {
							t.Errorf("rank %d %s: case %s differs from rank 0", r, pass, k)
						}
					}
				}
			}
		})
	}
}

// TestMPIKilledRank kills rank 1 (SIGKILL) in the middle of a loop of
// AllReduceSum calls: mpirun must end the job and exit non-zero.
func TestMPIKilledRank(t *testing.T) {
	const limit = 60 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := workerCmd(ctx, t, 3, "kill", t.TempDir())
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("mpirun still running after %v (killed): %v\n%s", limit, err, out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("mpirun exited with %v, want a non-zero exit status\n%s", err, out)
	}
	t.Logf("mpirun: %v", err)
}

// TestMPIWorker is the body of each rank under mpirun; it skips otherwise.
func TestMPIWorker(t *testing.T) {
	mode, bench := os.Getenv(envWorker), os.Getenv(envBench) == "1"
	if mode == "" && !bench {
		t.Skip("runs only under mpirun (started by TestMPI, or with " + envBench + "=1)")
	}
	c, err := FromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := c.(*mpiComm)
	if !ok {
		t.Fatalf("FromEnvironment returned %T, want the MPI Comm", c)
	}
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "rank %d of %d: %v\n", c.Rank(), c.Size(), err)
		c.Abort(1)
	}
	switch {
	case bench:
		if err := runBench(m); err != nil {
			fail(err)
		}
	case mode == "check":
		for _, pass := range []string{"whole", "split"} {
			if pass == "split" {
				maxMessage = 1000
			}
			res, err := runCases(c)
			if err != nil {
				fail(err)
			}
			b, _ := json.Marshal(res)
			if err := os.WriteFile(filepath.Join(os.Getenv(envOut), fmt.Sprintf("rank%d-%s.json", c.Rank(), pass)), b, 0o644); err != nil {
				fail(err)
			}
		}
	case mode == "kill":
		x := make([]float32, 1<<16)
		for i := range 1000 {
			if i == 20 && c.Rank() == 1 {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
			if err := c.AllReduceSum(x); err != nil {
				fail(err)
			}
		}
		fail(errors.New("the loop ended although rank 1 was killed"))
	default:
		fail(fmt.Errorf("unknown %s=%q", envWorker, mode))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// runBench times, on rank 0, AllReduceSum of a ResNet-18 gradient
// (11,175,000 float32, 44.7 MB) against a copy of the same size in one
// process and MPI_Allreduce.
func runBench(m *mpiComm) error {
	const n, reps, nativeReps = 11_175_000, 20, 5
	init := input32(3, m.Rank(), n)
	buf := make([]float32, n)
	best := func(reps int, f func() error) (time.Duration, error) {
		b := time.Duration(1 << 62)
		for range reps {
			copy(buf, init)
			if err := m.Barrier(); err != nil {
				return 0, err
			}
			t0 := time.Now()
			if err := f(); err != nil {
				return 0, err
			}
			b = min(b, time.Since(t0))
		}
		return b, nil
	}
	ring, err := best(reps, func() error { return m.AllReduceSum(buf) })
	if err != nil {
		return err
	}
	dst := make([]float32, n)
	cp, _ := best(reps, func() error { copy(dst, buf); return nil })
	native, err := best(nativeReps, func() error { return m.nativeAllReduceSum(buf) })
	if err != nil {
		return err
	}
	if m.Rank() == 0 {
		mb := float64(4*n) / 1e6
		fmt.Printf("dist benchmark: %d ranks, %d float32 (%.1f MB)\n", m.Size(), n, mb)
		fmt.Printf("  AllReduceSum (ring)  best of %2d: %8.4f s  (%.2f GB/s of buffer)\n", reps, ring.Seconds(), mb/1e3/ring.Seconds())
		fmt.Printf("  copy, one process    best of %2d: %8.4f s  (%.2f GB/s)\n", reps, cp.Seconds(), mb/1e3/cp.Seconds())
		fmt.Printf("  ratio AllReduceSum / copy:          %8.1f\n", ring.Seconds()/cp.Seconds())
		fmt.Printf("  MPI_Allreduce        best of %2d: %8.4f s  (%.1f× the ring)\n", nativeReps, native.Seconds(), native.Seconds()/ring.Seconds())
	}
	return nil
}
