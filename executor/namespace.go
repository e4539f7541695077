//go:build linux

package executor

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// inNamespace runs f on an OS thread that has entered the network namespace
// at path, so the sockets f creates belong to it; "" runs f here. The thread
// is returned to the process's namespace afterwards; if that fails, it is
// never unlocked, so the Go runtime ends it with the goroutine instead of
// running other goroutines in the wrong namespace.
func inNamespace(path string, f func() error) error {
	if path == "" {
		return f()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := enterAndRun(path, f)
		if restored {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// enterAndRun does inNamespace's work on the locked thread; restored says
// whether the thread is (back) in its own namespace.
func enterAndRun(path string, f func() error) (restored bool, err error) {
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true, fmt.Errorf("namespace: open own namespace: %w", err)
	}
	defer unix.Close(self)
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true, fmt.Errorf("namespace %s: %w", path, err)
	}
	err = unix.Setns(target, unix.CLONE_NEWNET)
	unix.Close(target)
	if err != nil {
		return true, fmt.Errorf("namespace %s: setns: %w", path, err)
	}
	ferr := f()
	if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
		return false, errors.Join(ferr, fmt.Errorf("namespace %s: return to own namespace: %w", path, err))
	}
	return true, ferr
}
