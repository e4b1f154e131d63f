//go:build !mpi

package dist

import (
	"strings"
	"testing"
)

func TestFromEnvironmentWithoutMPI(t *testing.T) {
	if Built() {
		t.Fatal("Built() is true without the mpi tag")
	}
	for _, v := range launchVars {
		t.Setenv(v, "")
	}
	c, err := FromEnvironment()
	if err != nil || c.Size() != 1 {
		t.Fatalf("no launcher: %v, %v", c, err)
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "1")
	if c, err := FromEnvironment(); err != nil || c.Size() != 1 {
		t.Fatalf("mpirun -np 1: %v, %v", c, err)
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "2")
	_, err = FromEnvironment()
	if err == nil || !strings.Contains(err.Error(), "go build -tags mpi ./cmd/dptrain") || !strings.Contains(err.Error(), "libopenmpi-dev") ||
		!strings.Contains(err.Error(), "one of 2 ranks") {
		t.Fatalf("mpirun -np 2: %v", err)
	}
}
