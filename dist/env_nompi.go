//go:build !mpi

package dist

import (
	"fmt"
	"os"
)

// Built reports whether this binary was built with MPI support (the mpi
// build tag).
func Built() bool { return false }

// FromEnvironment returns the Comm this process was launched for. This
// binary was built without MPI support: it returns Single(), or an error
// if the environment shows a launch of more than one rank (by mpirun, srun
// or another launcher), since every rank would then train alone.
func FromEnvironment() (Comm, error) {
	if l, ok := detectLaunch(os.Getenv); ok && l.multi() {
		return nil, noMPIError(l)
	}
	return Single(), nil
}

func noMPIError(l launch) error {
	what := "as one of several ranks"
	if l.size > 1 {
		what = fmt.Sprintf("as one of %d ranks", l.size)
	}
	return fmt.Errorf("dist: this process was launched by %s %s, but this binary was built without MPI support; "+
		"build it with `go build -tags mpi ./cmd/dptrain` (needs cgo, pkg-config and the Open MPI development files: apt-get install libopenmpi-dev)", l.by, what)
}
