//go:build unix

package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// prepareLockName is the lock file of a prepare in its output folder.
const prepareLockName = ".prepare.lock"

// lockPrepare takes an exclusive advisory lock (flock) on
// dir/.prepare.lock, held until the returned function is called or the
// process ends (a killed process releases it): two prepares into one folder
// would remove each other's temporaries and overwrite each other's shards.
func lockPrepare(dir string) (unlock func(), err error) {
	p := filepath.Join(dir, prepareLockName)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("prepare: lock %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("prepare: another prepare is writing into %s: wait for it to finish, or choose another output folder", dir)
		}
		return nil, fmt.Errorf("prepare: lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}
