//go:build !unix

package data

const prepareLockName = ".prepare.lock"

// lockPrepare does nothing where there is no flock: do not run two
// prepares into one folder there.
func lockPrepare(dir string) (unlock func(), err error) { return func() {}, nil }
