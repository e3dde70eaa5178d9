//go:build !linux

package soak

import "syscall"

// detached: the server has a process group of its own, so a ^C to the test
// does not reach it. (Only Linux can have it killed with the test process.)
func detached() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
