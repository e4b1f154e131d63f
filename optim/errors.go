package optim

import "fmt"

// UsageError is the panic value for misuse of the package's API (lengths
// that do not match, invalid arguments a caller should have validated).
type UsageError struct {
	Op, Msg string
}

func (e *UsageError) Error() string { return "optim: " + e.Op + ": " + e.Msg }

func usagef(op, format string, args ...any) {
	panic(&UsageError{Op: op, Msg: fmt.Sprintf(format, args...)})
}
