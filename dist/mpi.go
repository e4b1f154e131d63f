//go:build mpi

package dist

/*
#cgo pkg-config: ompi-c
#include <mpi.h>

// The group's communicator: a duplicate of MPI_COMM_WORLD. MPI is
// initialized at most once per process, so one is enough.
static MPI_Comm dist_comm;

static int dist_init_thread(int *provided) {
	return MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, provided);
}

static int dist_world_errors_return(void) {
	return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

static int dist_dup(void) {
	return MPI_Comm_dup(MPI_COMM_WORLD, &dist_comm);
}

static int dist_errors_return(void) {
	return MPI_Comm_set_errhandler(dist_comm, MPI_ERRORS_RETURN);
}

static int dist_rank_size(int *rank, int *size) {
	int e = MPI_Comm_rank(dist_comm, rank);
	if (e != MPI_SUCCESS) return e;
	return MPI_Comm_size(dist_comm, size);
}

// to or from < 0: MPI_PROC_NULL (nothing sent, nothing received). *got is
// the number of bytes received.
static int dist_sendrecv(int to, void *sbuf, int scount, int from, void *rbuf, int rcount, int *got) {
	MPI_Status st;
	int dst = to < 0 ? MPI_PROC_NULL : to;
	int src = from < 0 ? MPI_PROC_NULL : from;
	*got = 0;
	int e = MPI_Sendrecv(sbuf, scount, MPI_BYTE, dst, 0, rbuf, rcount, MPI_BYTE, src, 0, dist_comm, &st);
	if (e != MPI_SUCCESS || src == MPI_PROC_NULL) return e;
	return MPI_Get_count(&st, MPI_BYTE, got);
}

static int dist_native_allreduce_float(void *buf, int count) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_FLOAT, MPI_SUM, dist_comm);
}

static int dist_abort(int code) {
	return MPI_Abort(dist_comm, code);
}

static int dist_finalize(void) {
	int e = MPI_Comm_free(&dist_comm);
	int f = MPI_Finalize();
	return e != MPI_SUCCESS ? e : f;
}

static void dist_error_string(int code, char *buf, int *len) {
	*len = 0;
	if (MPI_Error_string(code, buf, len) != MPI_SUCCESS) *len = 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Built reports whether this binary was built with MPI support (the mpi
// build tag).
func Built() bool { return true }

// FromEnvironment returns the Comm this process was launched for: MPI()
// when an MPI launcher started it (mpirun, srun, another PMI or PMIx
// launcher; see the package documentation), Single() otherwise. It fails
// if MPI sees another number of ranks than the launcher started (srun
// without --mpi=pmix or pmi2 starts MPI singletons).
func FromEnvironment() (Comm, error) {
	l, ok := detectLaunch(os.Getenv)
	if !ok {
		return Single(), nil
	}
	c, err := MPI()
	if err != nil {
		return nil, fmt.Errorf("dist: launched by %s: %w", l.by, err)
	}
	if l.size > 0 && c.Size() != l.size {
		size := c.Size()
		c.Close()
		return nil, fmt.Errorf("dist: launched by %s as %d ranks, but MPI sees a group of %d; under srun, pass --mpi=pmix (or pmi2) so that the ranks find each other", l.by, l.size, size)
	}
	return c, nil
}

// maxMessage is the largest piece, in bytes, that one MPI_Sendrecv moves
// (MPI counts are C ints). A variable so that tests can make it small.
var maxMessage = 1 << 30

var mpiOnce struct {
	sync.Mutex
	called bool
}

// MPI initializes MPI (MPI_Init_thread, MPI_THREAD_FUNNELED), duplicates
// MPI_COMM_WORLD, sets its error handler to MPI_ERRORS_RETURN and returns
// the Comm of this rank. Every MPI call runs on one goroutine locked to
// its OS thread; the Comm's methods hand their work to it. MPI can be
// initialized once per process: a second call returns an error. Call
// Close (MPI_Finalize) before the process exits, or the launcher treats
// the exit as a failure and aborts the job.
func MPI() (Comm, error) {
	mpiOnce.Lock()
	defer mpiOnce.Unlock()
	if mpiOnce.called {
		return nil, errors.New("dist: MPI: already called in this process (MPI is initialized once; share the Comm)")
	}
	mpiOnce.called = true
	m := &mpiComm{reqs: make(chan func())}
	ready := make(chan error)
	go m.serve(ready)
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("dist: MPI: %w", err)
	}
	return m, nil
}

type mpiComm struct {
	guard
	e         *engine
	reqs      chan func() // run on the MPI thread
	closeOnce sync.Once
	closeErr  error
}

// serve is the MPI thread: it initializes MPI, then runs requests until
// reqs is closed (after MPI_Finalize), never unlocking the OS thread.
func (m *mpiComm) serve(ready chan<- error) {
	runtime.LockOSThread()
	var provided C.int
	if e := C.dist_init_thread(&provided); e != C.MPI_SUCCESS {
		ready <- mpiError("MPI_Init_thread", e)
		return
	}
	if provided < C.MPI_THREAD_FUNNELED {
		C.dist_finalize()
		ready <- fmt.Errorf("MPI_Init_thread: the MPI library provides thread level %d, expected MPI_THREAD_FUNNELED (%d) or more", provided, C.MPI_THREAD_FUNNELED)
		return
	}
	if e := C.dist_world_errors_return(); e != C.MPI_SUCCESS {
		ready <- mpiError("MPI_Comm_set_errhandler(MPI_COMM_WORLD)", e)
		return
	}
	if e := C.dist_dup(); e != C.MPI_SUCCESS {
		ready <- mpiError("MPI_Comm_dup(MPI_COMM_WORLD)", e)
		return
	}
	if e := C.dist_errors_return(); e != C.MPI_SUCCESS {
		ready <- mpiError("MPI_Comm_set_errhandler", e)
		return
	}
	var rank, size C.int
	if e := C.dist_rank_size(&rank, &size); e != C.MPI_SUCCESS {
		ready <- mpiError("MPI_Comm_rank/size", e)
		return
	}
	m.e = newEngine(int(rank), int(size), mpiLink{})
	ready <- nil
	for f := range m.reqs {
		f()
	}
}

func mpiError(fn string, code C.int) error {
	var buf [C.MPI_MAX_ERROR_STRING + 1]C.char
	var n C.int
	C.dist_error_string(code, &buf[0], &n)
	msg := C.GoStringN(&buf[0], n)
	if msg == "" {
		msg = "unknown error"
	}
	return fmt.Errorf("%s failed: %s (MPI error %d)", fn, msg, int(code))
}

// mpiLink runs on the MPI thread.
type mpiLink struct{}

func (mpiLink) sendRecv(to int, send []byte, from int, recv []byte) error {
	pieces := func(n int) int { return (n + maxMessage - 1) / maxMessage }
	ns, nr := 0, 0
	if to >= 0 {
		ns = pieces(len(send))
	}
	if from >= 0 {
		nr = pieces(len(recv))
	}
	for i := 0; i < max(ns, nr); i++ {
		dst, src := -1, -1
		var sp, rp unsafe.Pointer
		var sc, rc int
		if i < ns {
			s := send[i*maxMessage : min(len(send), (i+1)*maxMessage)]
			dst, sp, sc = to, unsafe.Pointer(&s[0]), len(s)
		}
		if i < nr {
			r := recv[i*maxMessage : min(len(recv), (i+1)*maxMessage)]
			src, rp, rc = from, unsafe.Pointer(&r[0]), len(r)
		}
		var got C.int
		if e := C.dist_sendrecv(C.int(dst), sp, C.int(sc), C.int(src), rp, C.int(rc), &got); e != C.MPI_SUCCESS {
			return fmt.Errorf("sending %d bytes to rank %d and receiving %d bytes from rank %d: %w", sc, dst, rc, src, mpiError("MPI_Sendrecv", e))
		}
		if src >= 0 && int(got) != rc {
			return fmt.Errorf("MPI_Sendrecv: received %d bytes from rank %d, expected %d", int(got), src, rc)
		}
	}
	return nil
}

// do runs f on the MPI thread and returns its result.
func (m *mpiComm) do(op string, f func() error) error {
	m.enter(op)
	defer m.leave()
	done := make(chan error, 1)
	m.reqs <- func() { done <- f() }
	return <-done
}

func (m *mpiComm) Rank() int { return m.e.rank }
func (m *mpiComm) Size() int { return m.e.size }

func (m *mpiComm) AllReduceSum(buf []float32) error {
	return m.do("AllReduceSum", func() error { return allReduce(m.e, opAllReduceSum, buf) })
}

func (m *mpiComm) AllReduceSum64(buf []float64) error {
	return m.do("AllReduceSum64", func() error { return allReduce(m.e, opAllReduceSum64, buf) })
}

func (m *mpiComm) Broadcast(buf []byte, root int) error {
	checkRoot("Broadcast", root, m.e.size)
	return m.do("Broadcast", func() error { return m.e.broadcast(buf, root) })
}

func (m *mpiComm) Barrier() error {
	return m.do("Barrier", m.e.barrier)
}

// nativeAllReduceSum is MPI_Allreduce(MPI_SUM) on float32, for the
// benchmark's comparison only: its summation order is the library's.
func (m *mpiComm) nativeAllReduceSum(buf []float32) error {
	return m.do("MPI_Allreduce", func() error {
		if len(buf) == 0 {
			return nil
		}
		if e := C.dist_native_allreduce_float(unsafe.Pointer(&buf[0]), C.int(len(buf))); e != C.MPI_SUCCESS {
			return mpiError("MPI_Allreduce", e)
		}
		return nil
	})
}

// Abort calls MPI_Abort on the MPI thread, which ends every rank of the
// job. If that thread is busy (another goroutine is blocked in a
// collective) for 2 s, or MPI_Abort returns, or the Comm is closed, the
// process exits with code instead, and the launcher then ends the other
// ranks.
func (m *mpiComm) Abort(code int) {
	if !m.closed.Load() {
		returned := make(chan struct{})
		select {
		case m.reqs <- func() { C.dist_abort(C.int(code)); close(returned) }:
			select {
			case <-returned:
			case <-time.After(30 * time.Second):
			}
		case <-time.After(2 * time.Second):
		}
	}
	os.Exit(code)
}

// Close calls MPI_Comm_free and MPI_Finalize. It is idempotent.
func (m *mpiComm) Close() error {
	m.closeOnce.Do(func() {
		m.enter("Close")
		m.closed.Store(true)
		done := make(chan error, 1)
		m.reqs <- func() {
			if e := C.dist_finalize(); e != C.MPI_SUCCESS {
				done <- fmt.Errorf("dist: Close: %w", mpiError("MPI_Finalize", e))
				return
			}
			done <- nil
		}
		m.closeErr = <-done
		close(m.reqs)
		m.leave()
	})
	return m.closeErr
}
