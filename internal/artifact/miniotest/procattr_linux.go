package miniotest

import "syscall"

// procAttr makes the server die with the test binary, even when a test
// panics or times out before the cleanup runs, or when a shared server is
// never stopped.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
