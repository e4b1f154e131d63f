//go:build unix

package nn

import "syscall"

// processCPU returns the CPU time (user + system, all threads) this process
// has used, in nanoseconds. Benchmarks report it per op beside wall time:
// on a shared machine it is far less sensitive to other tenants' load.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
