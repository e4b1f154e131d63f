package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"dptrain/train"
)

// stopOnSignal turns the first SIGINT (Ctrl-C) or SIGTERM into a request
// to stop after the current step with a checkpoint (the returned channel
// is closed), and restores the default handling, so that a second signal
// ends the process at once. Call release when training is over.
func stopOnSignal(stderr io.Writer) (stop <-chan struct{}, release func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ch := make(chan struct{})
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			fmt.Fprintf(stderr, "\ndptrain: %v: finishing the current step and writing a checkpoint (send it again to quit at once)\n", s)
			close(ch)
		case <-done:
		}
	}()
	return ch, func() {
		signal.Stop(sigs)
		close(done)
	}
}

// exitInterrupted is the exit status of a run ended by a signal (128 +
// SIGINT, as shells report it).
const exitInterrupted = 130

// exitError carries an exit status other than 1 to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// interrupted maps train's *InterruptedError to exit status 130.
func interrupted(err error) error {
	var ie *train.InterruptedError
	if errors.As(err, &ie) {
		return &exitError{code: exitInterrupted, err: err}
	}
	return err
}
