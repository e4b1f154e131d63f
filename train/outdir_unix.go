//go:build unix

package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// openNoFollow opens path without following a symlink at it (a planted
// link makes the open fail instead of redirecting the write).
func openNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag|syscall.O_NOFOLLOW, perm)
}

// lockOut takes an exclusive advisory lock (flock) on out/.dptrain.lock,
// held until the returned function is called or the process ends (a
// killed process releases it with its file descriptors). A second dptrain
// on the same --out is refused, naming the holder's pid: two writers would
// overwrite each other's checkpoints and the ledger would count neither's
// steps fully.
func lockOut(out string) (unlock func() error, err error) {
	path := filepath.Join(out, lockName)
	f, err := openNoFollow(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--out: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another process"
			if pid, e := strconv.Atoi(strings.TrimSpace(string(b[:n]))); e == nil {
				holder = fmt.Sprintf("pid %d", pid)
			}
			return nil, fmt.Errorf("--out %s: another dptrain (%s) is training in this folder; wait for it to finish, or use another --out", out, holder)
		}
		return nil, fmt.Errorf("--out: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f.Close, nil
}
