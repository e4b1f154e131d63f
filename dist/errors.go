package dist

import (
	"errors"
	"fmt"
	"strings"
)

// UsageError is the panic value for misuse of the API: a group size below
// one, a rank or root out of range, a negative count, a Comm used after
// Close or by two goroutines at once. These are programming errors in the
// caller, not runtime failures.
type UsageError struct {
	Op  string
	Msg string
}

func (e *UsageError) Error() string { return "dist: " + e.Op + ": " + e.Msg }

func usagef(op, format string, args ...any) {
	panic(&UsageError{Op: op, Msg: fmt.Sprintf(format, args...)})
}

// ErrMismatch is wrapped by every *MismatchError: the ranks disagree,
// either on a collective call (a different operation, length or root on
// some rank) or, in Agree, on a digest.
var ErrMismatch = errors.New("ranks disagree")

// MismatchError reports that some ranks differ from rank 0. Every rank of
// the group returns a MismatchError with the same Error text.
type MismatchError struct {
	// Ranks lists, in increasing order, the ranks that differ from rank 0.
	Ranks []int
	// Size is the number of ranks in the group.
	Size int
	// Msg is the full description (Error returns "dist: " + Msg).
	Msg string
}

func (e *MismatchError) Error() string { return "dist: " + e.Msg }

// Unwrap makes errors.Is(err, ErrMismatch) true.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

// AbortError is returned, by a group from Local, to every operation of
// every rank after one rank called Abort.
type AbortError struct {
	Rank, Size int // the rank that called Abort, and the group size
	Code       int // the code it passed
}

func (e *AbortError) Error() string {
	return fmt.Sprintf("dist: rank %d of %d called Abort(%d)", e.Rank, e.Size, e.Code)
}

// rankList formats ranks as "rank 3" or "ranks 1, 2, 5", at most 16 named
// and then the count of the others.
func rankList(ranks []int) string {
	var b strings.Builder
	if len(ranks) == 1 {
		b.WriteString("rank ")
	} else {
		b.WriteString("ranks ")
	}
	const most = 16
	for i, r := range ranks {
		if i == most {
			fmt.Fprintf(&b, " and %d more", len(ranks)-most)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, r)
	}
	return b.String()
}
