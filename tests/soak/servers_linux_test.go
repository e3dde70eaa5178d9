package soak

import "syscall"

// detached: the server has a process group of its own, so a ^C to the test
// does not reach it, and is killed when the test process dies (a timeout's
// panic, a signal), so no server outlives a crashed test.
func detached() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
