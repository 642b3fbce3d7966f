//go:build !linux

package redistest

import "syscall"

// procAttr is empty where the kernel cannot kill the child with its parent:
// a server may then outlive a test binary that crashed.
func procAttr() *syscall.SysProcAttr { return nil }
