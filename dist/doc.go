// Package dist runs data-parallel DP-SGD on R processes ("ranks"): each
// rank computes the sum of the clipped per-example gradients of its share
// of a logical batch (Partition gives the shares), one AllReduceSum per
// step sums these over the ranks, and every rank then holds the same,
// bit-identical, gradient sum and takes the same optimizer step, so the
// weights stay identical; Agree checks that they do (compare a digest of
// the weights). The privacy noise is not this package's business: in
// dptrain, rank 0 alone draws it and adds it to its share before the
// all-reduce, so it is added exactly once (dpsgd.PrivateStep.Finish).
//
// A group of ranks is reached through a Comm:
//
//   - MPI() (built with the mpi build tag) is this process's rank of the
//     MPI job it was launched in;
//   - Single() is a group of one, where every collective is a no-op;
//   - Local(size) is an in-process group of goroutines connected by
//     channels, for tests: it runs the same algorithms as MPI, so it
//     gives the same bits;
//   - FromEnvironment() picks MPI() when an MPI launcher started the
//     process and Single() otherwise.
//
// It imports no other dptrain package; the MPI binding uses cgo and Open
// MPI (pkg-config package ompi-c).
//
// # Summation order and determinism
//
// The collectives are written once, over a point-to-point exchange with
// the ring neighbours (send to rank+1 while receiving from rank−1), and
// shared by MPI and Local. AllReduceSum of n values on R ranks cuts buf
// into R contiguous chunks, chunk c holding the elements Partition(n, R, c)
// (lengths ⌊n/R⌋ or ⌈n/R⌉; with n < R some chunks are empty), and runs
//
//   - a ring reduce-scatter of R−1 steps: in step s, rank r sends chunk
//     (r−s) mod R to rank r+1, receives chunk (r−s−1) mod R from rank r−1
//     into a receive buffer (one chunk long, kept by the Comm) and sets
//     its own copy of that chunk to received + local, element by element;
//   - a ring allgather of R−1 steps: in step s, rank r sends chunk
//     (r+1−s) mod R to rank r+1 and receives chunk (r−s) mod R from rank
//     r−1 in place.
//
// Chunk c therefore starts at rank c and travels up the ring: writing x_k
// for rank k's values and indices mod R, every element of chunk c is
//
//	((…((x_c + x_{c+1}) + x_{c+2}) + …) + x_{c+R−1})
//
// rounded to float32 (float64 for AllReduceSum64) after each addition. It
// is complete at rank c−1, and the allgather copies those bits to every
// other rank. The result's bits are thus a function of the R inputs and of
// R alone: identical on every rank, identical from run to run, independent
// of timing and of the transport (MPI or Local), and the same for every
// element's position within its chunk. Changing R changes the order (and
// the partition of the batch), so results are reproducible for a given R,
// not across different R. A float32 sum of R terms differs from the exact
// sum by at most about (R−1)·2⁻²⁴·Σ|x_k|. All ranks must share a byte
// order (the values travel as their memory bytes).
//
// Each rank sends and receives 2·(R−1)/R·n values per AllReduceSum, in
// 2·(R−1) steps; the receive buffer of ⌈n/R⌉ values is allocated once per
// Comm and reused. Broadcast pipelines buf along the chain root → root+1 →
// … in pieces of 1 MiB; Barrier is the call check below, alone.
//
// Why not MPI_Allreduce: its summation order is implementation-defined
// (it depends on the algorithm the library picks for the message size,
// the number of ranks and the process layout, and may change with the
// library's version or tuning), so its bits are not reproducible from the
// inputs alone, and it is not faster: for 44.7 MB of float32 on one node
// Open MPI 4.1's default choice took 3.3× the ring's time on 2 ranks and
// 1.6× on 3 (2 loaded cores; other layouts have been reported much
// slower still). The benchmark below prints both.
//
// # Call checking and errors
//
// Every collective starts with a ring allgather of a 16-byte header from
// each rank (the operation, the root and the length), R−1 tiny messages.
// If any rank's header differs from rank 0's (another length, root or
// operation), the call does nothing else and fails on every rank with the
// same *MismatchError (wrapping ErrMismatch) listing the calls, e.g.
// "dist: collective calls differ across ranks (group of 3): rank 0:
// AllReduceSum of 10 float32; rank 2: AllReduceSum of 11 float32"; the
// group stays usable. Any other error (a failed MPI call, reported with
// MPI_Error_string, or a failed Local group) names the operation and the
// rank, and leaves the group unusable: report it and call Abort.
//
// Misuse (a root or rank out of range, Local(0), a Comm used after Close
// or by two goroutines at once) panics with a *UsageError.
//
// # Threading model
//
// A Comm is used by one goroutine at a time. MPI() starts one goroutine
// that locks itself to its OS thread (runtime.LockOSThread, never
// unlocked), calls MPI_Init_thread with MPI_THREAD_FUNNELED and then makes
// every MPI call of the process: each Comm method hands its whole
// collective to that goroutine through a channel and waits for it. Go
// slices are passed to MPI_Sendrecv (as MPI_BYTE, messages over 1 GiB in
// pieces) only for the duration of the call. MPI_COMM_WORLD is duplicated
// and both communicators return errors (MPI_ERRORS_RETURN) instead of
// aborting. MPI can be initialized once per process: call MPI (or
// FromEnvironment) once and share the Comm; call Close (MPI_Comm_free,
// MPI_Finalize) before exiting, or the launcher treats the exit as a
// failure.
//
// # Launching
//
// Build with MPI support (cgo, pkg-config and the Open MPI development
// files: apt-get install libopenmpi-dev pkg-config):
//
//	go build -tags mpi ./cmd/dptrain
//	mpirun -np 4 ./dptrain train …            # as root: mpirun --allow-run-as-root
//	srun --mpi=pmix -n 4 ./dptrain train …    # under Slurm
//
// FromEnvironment recognises a launch by OMPI_COMM_WORLD_SIZE (Open MPI's
// mpirun), PMIX_RANK (PMIx launchers: srun --mpi=pmix, prterun), PMI_SIZE
// (PMI-1/2 launchers: MPICH's hydra, srun --mpi=pmi2) or a Slurm job step
// of more than one task (SLURM_STEP_NUM_TASKS, or SLURM_NTASKS with
// SLURM_STEP_ID). With the mpi tag it then calls MPI(), and fails if MPI
// sees another number of ranks than the launcher started (srun without
// --mpi starts independent singletons). Without the tag (Built() is
// false) it returns Single(), or an error saying the binary was built
// without MPI support and how to build it when the launch has more than
// one rank.
//
// # Failure behaviour
//
// A collective blocks until every rank has called it. If a rank dies (a
// crash, SIGKILL, the OOM killer), mpirun (or srun) notices and ends the
// other ranks, which are typically blocked in MPI_Sendrecv, and exits
// non-zero; the tests check this for SIGKILL. Abort calls MPI_Abort, which
// ends every rank of the job with the code; if the MPI thread stays busy
// for 2 s (another goroutine is blocked in a collective) the process exits
// with the code instead, and the launcher ends the others. On a Local
// group, Abort (or a transfer error) fails the group: every pending and
// later operation of every rank returns an *AbortError (or that error)
// and Abort returns. On Single, Abort calls os.Exit.
//
// # Tests and benchmark
//
// go test ./dist runs everything on Local groups. go test -tags mpi ./dist
// also runs the test binary under mpirun --allow-run-as-root --oversubscribe
// on 2 and 3 ranks (workers selected by DPTRAIN_DIST_WORKER and writing to
// DPTRAIN_DIST_OUT) and checks that the results are bit-identical to a
// Local group's, with whole and with split messages, and that a rank
// killed with SIGKILL makes mpirun exit non-zero. These tests skip when
// mpirun is not on PATH, unless DPTRAIN_REQUIRE_MPI is set.
//
// The benchmark times AllReduceSum of a ResNet-18 gradient (11,175,000
// float32, 44.7 MB) against a copy of the same size in one process and
// against MPI_Allreduce, and rank 0 prints the best times and ratios:
//
//	go test -tags mpi -c -o /tmp/dist.test ./dist
//	DPTRAIN_DIST_BENCH=1 mpirun --allow-run-as-root -x DPTRAIN_DIST_BENCH -np 2 /tmp/dist.test -test.run='^TestMPIWorker$'
package dist
