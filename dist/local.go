package dist

import (
	"fmt"
	"sync"
)

// Local returns the Comms of an in-process group of size ranks, connected
// by channels: Comm i has rank i. Each Comm is meant to be used by its own
// goroutine (a collective blocks until every rank has called it). The
// collectives run the same algorithms as MPI's, so their results are
// bit-identical to an MPI group's of the same size for the same inputs.
//
// Abort on a Local Comm returns: it fails the group, so that every
// pending and later operation of every rank returns an *AbortError. A
// transfer error fails the group the same way. Local panics if size < 1.
func Local(size int) []Comm {
	if size < 1 {
		usagef("Local", "size %d: expected >= 1", size)
	}
	g := &localGroup{size: size, pipes: make(map[[2]int]*pipe), failed: make(chan struct{})}
	cs := make([]Comm, size)
	for r := range cs {
		cs[r] = &localComm{g: g, e: newEngine(r, size, &localLink{g: g, rank: r})}
	}
	return cs
}

// localGroup is the shared state of a Local group.
type localGroup struct {
	size   int
	mu     sync.Mutex
	pipes  map[[2]int]*pipe // created on first use; the engine only uses ring neighbours
	failed chan struct{}    // closed when the group fails
	once   sync.Once
	err    error // why; written before failed is closed
}

// pipe carries messages from one rank to another: at most one message is
// in flight (the sender waits for its acknowledgement), so both channels
// have room for it and neither send ever blocks.
type pipe struct {
	data chan []byte
	ack  chan struct{}
}

func (g *localGroup) pipe(from, to int) *pipe {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.pipes[[2]int{from, to}]
	if p == nil {
		p = &pipe{data: make(chan []byte, 1), ack: make(chan struct{}, 1)}
		g.pipes[[2]int{from, to}] = p
	}
	return p
}

func (g *localGroup) fail(err error) {
	g.once.Do(func() {
		g.err = err
		close(g.failed)
	})
}

// broken returns the group's failure, or nil.
func (g *localGroup) broken() error {
	select {
	case <-g.failed:
		return g.err
	default:
		return nil
	}
}

// localLink implements link for one rank of a Local group. The receiver
// copies from the sender's buffer and then acknowledges; the sender
// returns only after the acknowledgement (or after withdrawing a message
// nobody took, when the group failed), so its buffer is never read after
// sendRecv returns.
type localLink struct {
	g    *localGroup
	rank int
}

func (l *localLink) sendRecv(to int, send []byte, from int, recv []byte) error {
	g := l.g
	var out *pipe
	if to >= 0 {
		out = g.pipe(l.rank, to)
		select {
		case out.data <- send:
		case <-g.failed:
			return g.err
		}
	}
	var err error
	if from >= 0 {
		in := g.pipe(from, l.rank)
		select {
		case msg := <-in.data:
			if len(msg) == len(recv) {
				copy(recv, msg)
			} else {
				err = fmt.Errorf("received %d bytes from rank %d, expected %d", len(msg), from, len(recv))
			}
			in.ack <- struct{}{}
			if err != nil {
				g.fail(err)
			}
		case <-g.failed:
			err = g.err
		}
	}
	if out != nil {
		select {
		case <-out.ack:
		case <-g.failed:
			// Either the message is still queued (withdraw it) or the
			// receiver took it and acknowledges at once.
			select {
			case <-out.data:
			case <-out.ack:
			}
			if err == nil {
				err = g.err
			}
		}
	}
	return err
}

type localComm struct {
	guard
	g *localGroup
	e *engine
}

func (c *localComm) Rank() int { return c.e.rank }
func (c *localComm) Size() int { return c.e.size }

func (c *localComm) run(op string, f func() error) error {
	c.enter(op)
	defer c.leave()
	if err := c.g.broken(); err != nil {
		return err
	}
	return f()
}

func (c *localComm) AllReduceSum(buf []float32) error {
	return c.run("AllReduceSum", func() error { return allReduce(c.e, opAllReduceSum, buf) })
}

func (c *localComm) AllReduceSum64(buf []float64) error {
	return c.run("AllReduceSum64", func() error { return allReduce(c.e, opAllReduceSum64, buf) })
}

func (c *localComm) Broadcast(buf []byte, root int) error {
	checkRoot("Broadcast", root, c.e.size)
	return c.run("Broadcast", func() error { return c.e.broadcast(buf, root) })
}

func (c *localComm) Barrier() error {
	return c.run("Barrier", c.e.barrier)
}

// Abort fails the group with an *AbortError and returns.
func (c *localComm) Abort(code int) {
	c.g.fail(&AbortError{Rank: c.e.rank, Size: c.e.size, Code: code})
}

func (c *localComm) Close() error {
	c.closed.Store(true)
	return nil
}
