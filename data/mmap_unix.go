//go:build linux || darwin || freebsd || netbsd || openbsd

package data

import (
	"os"
	"syscall"
)

// mapFile maps size bytes of f read-only; release unmaps them.
func mapFile(f *os.File, size int) (b []byte, release func() error, err error) {
	if size == 0 {
		return nil, func() error { return nil }, nil
	}
	b, err = syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return readFile(f, size)
	}
	return b, func() error { return syscall.Munmap(b) }, nil
}
