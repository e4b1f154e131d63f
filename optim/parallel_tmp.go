package optim

import (
	"fmt"
	"sync"
)

// TEMP(issue 13): replaced by internal/par once it lands.

type worker struct{ wg sync.WaitGroup }

type task interface{ run(lo, hi int, w *worker) }

func parallelFor(n, grain int, t task, local *worker) {
	if n <= 0 {
		return
	}
	t.run(0, n, local)
}

// UsageError is the panic value for misuse of the package's API (lengths
// that do not match, invalid arguments a caller should have validated).
type UsageError struct {
	Op, Msg string
}

func (e *UsageError) Error() string { return "optim: " + e.Op + ": " + e.Msg }

func usagef(op, format string, args ...any) {
	panic(&UsageError{Op: op, Msg: fmt.Sprintf(format, args...)})
}

var threadsTmp = 1

func SetThreads(n int) int { old := threadsTmp; threadsTmp = n; return old }
