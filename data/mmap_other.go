//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package data

import "os"

// mapFile reads the file into memory where memory mapping is not available.
func mapFile(f *os.File, size int) ([]byte, func() error, error) {
	return readFile(f, size)
}
