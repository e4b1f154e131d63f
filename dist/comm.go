package dist

import (
	"fmt"
	"os"
	"sync/atomic"
)

// Comm is one rank's handle on a group of Size() ranks. Every collective
// (AllReduceSum, AllReduceSum64, Broadcast, Barrier) must be called by
// every rank of the group, in the same order, with the same length (and
// root); a rank that calls a different collective, or passes another
// length or root, makes the call fail on every rank with the same
// *MismatchError, and the group stays usable. Any other error (a failed
// transfer, an aborted Local group) leaves the group unusable: the caller
// should report it and call Abort.
//
// A Comm is used by one goroutine at a time (a second concurrent call
// panics); the results of a collective are in place when it returns.
type Comm interface {
	// Rank returns this process's rank, in [0, Size()).
	Rank() int
	// Size returns the number of ranks in the group.
	Size() int
	// AllReduceSum replaces buf, on every rank, with the element-wise sum
	// over ranks of buf. Every rank must pass the same len(buf). The
	// result is deterministic: its bits depend only on the Size() inputs
	// and on Size(), and are identical on every rank (see the package
	// documentation for the summation order).
	AllReduceSum(buf []float32) error
	// AllReduceSum64 is AllReduceSum for float64.
	AllReduceSum64(buf []float64) error
	// Broadcast copies root's buf into buf on every other rank. Every rank
	// must pass the same len(buf) and root. A root outside [0, Size())
	// panics.
	Broadcast(buf []byte, root int) error
	// Barrier returns once every rank has called it.
	Barrier() error
	// Abort ends every rank of the job with the exit code. For MPI (and
	// Single) it does not return; see the package documentation for
	// Local.
	Abort(code int)
	// Close releases the Comm (MPI_Finalize for MPI). It is idempotent;
	// using the Comm after Close panics.
	Close() error
}

// guard detects use after Close and concurrent use of one Comm.
type guard struct {
	busy   atomic.Bool
	closed atomic.Bool
}

func (g *guard) enter(op string) {
	if g.closed.Load() {
		usagef(op, "Comm used after Close")
	}
	if !g.busy.CompareAndSwap(false, true) {
		usagef(op, "called while another operation of the same Comm is in progress: use each Comm from one goroutine at a time")
	}
}

func (g *guard) leave() { g.busy.Store(false) }

func checkRoot(op string, root, size int) {
	if root < 0 || root >= size {
		usagef(op, "root %d out of range [0,%d)", root, size)
	}
}

// Single returns the Comm of a group of one rank: every collective is a
// no-op that leaves buf unchanged (the sum over one rank), Broadcast
// panics unless root is 0, and Abort calls os.Exit(code).
func Single() Comm { return &single{} }

type single struct{ guard }

func (*single) Rank() int { return 0 }
func (*single) Size() int { return 1 }

func (s *single) AllReduceSum(buf []float32) error {
	s.enter("AllReduceSum")
	s.leave()
	return nil
}

func (s *single) AllReduceSum64(buf []float64) error {
	s.enter("AllReduceSum64")
	s.leave()
	return nil
}

func (s *single) Broadcast(buf []byte, root int) error {
	s.enter("Broadcast")
	defer s.leave()
	checkRoot("Broadcast", root, 1)
	return nil
}

func (s *single) Barrier() error {
	s.enter("Barrier")
	s.leave()
	return nil
}

func (*single) Abort(code int) { os.Exit(code) }

func (s *single) Close() error {
	s.closed.Store(true)
	return nil
}

// Partition returns the block [lo, hi) of the n items 0, …, n−1 that rank
// rank of size ranks owns: lo = ⌊rank·n/size⌋ and hi = ⌊(rank+1)·n/size⌋
// (computed without overflow). The blocks of ranks 0, …, size−1 are
// contiguous, in rank order, cover [0, n) exactly, and their lengths are
// ⌊n/size⌋ or ⌈n/size⌉. It panics unless n ≥ 0, size ≥ 1 and
// 0 ≤ rank < size.
func Partition(n, size, rank int) (lo, hi int) {
	if n < 0 || size < 1 || rank < 0 || rank >= size {
		panic(&UsageError{Op: "Partition", Msg: fmt.Sprintf("n=%d size=%d rank=%d: expected n >= 0, size >= 1, 0 <= rank < size", n, size, rank)})
	}
	return split(n, size, rank), split(n, size, rank+1)
}

// split returns ⌊k·n/size⌋ for 0 ≤ k ≤ size without overflowing.
func split(n, size, k int) int {
	q, m := n/size, n%size
	return k*q + k*m/size
}

// Agree tells every rank whether all ranks hold the same digest (of their
// weights, configuration, data order…): rank 0 broadcasts its digest, each
// rank compares it with its own, and the mismatches are summed. It returns
// nil on every rank when all digests are equal, and otherwise, on every
// rank, a *MismatchError (wrapping ErrMismatch) with the same text naming
// the ranks that differ, e.g. "dist: digests differ across ranks: rank 1
// of 2 does not match rank 0". An error from the collectives it uses is
// returned wrapped.
func Agree(c Comm, digest [32]byte) error {
	size, rank := c.Size(), c.Rank()
	if size == 1 {
		return nil
	}
	root := digest
	if err := c.Broadcast(root[:], 0); err != nil {
		return fmt.Errorf("dist: Agree: %w", err)
	}
	// One flag per rank: the sum of 0s and 1s is exact in any order.
	flags := make([]float64, size)
	if root != digest {
		flags[rank] = 1
	}
	if err := c.AllReduceSum64(flags); err != nil {
		return fmt.Errorf("dist: Agree: %w", err)
	}
	var differ []int
	for r, f := range flags {
		if f != 0 {
			differ = append(differ, r)
		}
	}
	if len(differ) == 0 {
		return nil
	}
	verb := "does"
	if len(differ) > 1 {
		verb = "do"
	}
	return &MismatchError{Ranks: differ, Size: size,
		Msg: fmt.Sprintf("digests differ across ranks: %s of %d %s not match rank 0", rankList(differ), size, verb)}
}
