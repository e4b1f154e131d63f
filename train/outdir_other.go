//go:build !unix

package train

import "os"

// openNoFollow opens path (symlinks are not refused on this system).
func openNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag, perm)
}

// lockOut is a no-op on systems without flock: do not run two dptrain
// processes on one --out there.
func lockOut(out string) (unlock func() error, err error) { return func() error { return nil }, nil }
