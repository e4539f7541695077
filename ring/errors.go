//go:build linux

package ring

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

var (
	// ErrUnavailable means the kernel refused or lacks io_uring. The error
	// returned by New wraps it together with the errno and a sentence on what
	// to do; test for it with errors.Is.
	ErrUnavailable = errors.New("io_uring unavailable")

	// ErrClosed is returned by every method of a closed Ring.
	ErrClosed = errors.New("ring: use of closed ring")

	// ErrSQFull is returned by GetSQE when every submission slot holds an SQE
	// that has not been submitted yet: call Submit and try again.
	ErrSQFull = errors.New("ring: submission queue full")
)

// UnavailableError is the error New returns when io_uring_setup fails for a
// reason that means io_uring cannot be used here at all.
type UnavailableError struct {
	Errno syscall.Errno
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%v: io_uring_setup: %v (%s)", ErrUnavailable, e.Errno, e.Cause())
}

// Cause says in words a user can act on why io_uring was refused.
func (e *UnavailableError) Cause() string {
	switch e.Errno {
	case syscall.EPERM, syscall.EACCES:
		return "refused by a seccomp profile (a container's default profile does this) or by sysctl kernel.io_uring_disabled; allow io_uring_setup/io_uring_enter/io_uring_register, or set kernel.io_uring_disabled=0"
	case syscall.ENOSYS:
		return "the kernel is older than 5.1 or was built without CONFIG_IO_URING"
	case syscall.ENOMEM:
		return MemlockHint()
	default:
		return "io_uring cannot be set up on this system"
	}
}

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the errno, so errors.Is(err, syscall.EPERM) works too.
func (e *UnavailableError) Unwrap() error { return e.Errno }

// setupError turns io_uring_setup's errno into the error New returns.
func setupError(errno syscall.Errno) error {
	switch errno {
	case syscall.EPERM, syscall.EACCES, syscall.ENOSYS, syscall.ENOMEM:
		return &UnavailableError{Errno: errno}
	}
	return os.NewSyscallError("io_uring_setup", errno)
}
