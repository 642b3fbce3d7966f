//go:build !linux

package miniotest

import "syscall"

// procAttr is empty where the kernel cannot kill the child with its parent:
// a server may then outlive a test binary that crashed, or a shared server
// one whose TestMain did not call Main.
func procAttr() *syscall.SysProcAttr { return nil }
