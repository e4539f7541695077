//go:build linux

package executor

import (
	"context"
	"os"
	"syscall"

	"github.com/kasync-go/kasync/ring"
)

// stopCause says who asked the kernel to cancel an op.
type stopCause uint8

const (
	stopNone     stopCause = iota
	stopCtx                // the caller's context (or its owner's Close)
	stopDeadline           // a net-style deadline (SetDeadline)
)

// outcome is how one operation ended.
type outcome struct {
	res    int32     // the terminal CQE's result: a count, or -errno
	stop   stopCause // who asked to cancel it, if anyone
	linked bool      // ctx's deadline went with it as a LINK_TIMEOUT
}

// result returns the op's count, or the error its caller sees: the cause of
// a cancellation (cancelCause), or else the kernel's errno.
func (out outcome) result(ctx context.Context, f *sysFD, l *loop) (int, error) {
	if out.res >= 0 {
		return int(out.res), nil
	}
	if err := out.cancelCause(ctx, f, l); err != nil {
		return 0, err
	}
	return 0, syscall.Errno(-out.res)
}

// endedByCancel reports whether a result says the op was cancelled or
// interrupted rather than failed: what a multishot op's owner, which itself
// asked for the cancellation (a cap, a pause, Close), treats as a plain end.
// cancelCause names the cause for ops whose caller needs it.
func endedByCancel(res int32) bool {
	return res == -int32(syscall.ECANCELED) || res == -int32(syscall.EINTR)
}

// cancelCause is the one place where a cancelled op's result is
// interpreted: ECANCELED, or EINTR from a blocking op that was interrupted.
// It returns nil for any other result (the op completed, or failed on its
// own). The causes, in the order they are checked:
//
//   - the executor's Close closed f: ErrClosed;
//   - f's owner closed it (or ctx's cause says so): errClosedFD;
//   - the executor is closing: ErrClosed;
//   - a deadline cut it short: os.ErrDeadlineExceeded;
//   - ctx is done: its cause;
//   - ctx's deadline fired as the op's LINK_TIMEOUT: context.DeadlineExceeded;
//   - EINTR that nobody asked for: errInterrupted, and the caller retries;
//   - otherwise errCancelled.
//
// The layers above map errClosedFD and ErrClosed to what their users test
// for (netError, fileErr).
func (out outcome) cancelCause(ctx context.Context, f *sysFD, l *loop) error {
	if !endedByCancel(out.res) {
		return nil
	}
	errno := syscall.Errno(-out.res)
	ctxErr := ctx != nil && ctx.Err() != nil
	switch {
	case f != nil && f.closedByExecutor():
		return ErrClosed
	case f != nil && f.isClosing(), ctxErr && context.Cause(ctx) == errClosedFD:
		return errClosedFD
	case l.isClosing():
		return ErrClosed
	case out.stop == stopDeadline:
		return os.ErrDeadlineExceeded
	case ctxErr:
		return context.Cause(ctx)
	case errno == syscall.ECANCELED && out.linked:
		return context.DeadlineExceeded
	case errno == syscall.EINTR && out.stop == stopNone:
		return errInterrupted
	}
	return errCancelled
}

// syscallErr names a kernel errno by the call that failed, as
// os.NewSyscallError does; other errors pass as they are.
func syscallErr(call string, err error) error {
	if errno, ok := err.(syscall.Errno); ok {
		return os.NewSyscallError(call, errno)
	}
	return err
}

// fileErr maps a closed descriptor to os.ErrClosed, as os.File reports it.
func fileErr(err error) error {
	if err == errClosedFD {
		return os.ErrClosed
	}
	return err
}

// run runs one single-shot op to its end on descriptor f (nil: none) and
// returns its count or the error its caller sees; an op interrupted without
// anyone asking is issued again. It is exec plus outcome.result: the one
// call every layer's blocking operation makes.
func (l *loop) run(ctx context.Context, f *sysFD, slot *opSlot, prep func(*ring.SQE, *op)) (int, error) {
	for {
		out, err := l.exec(ctx, f, slot, prep)
		if err != nil {
			return 0, err
		}
		n, err := out.result(ctx, f, l)
		if err != errInterrupted {
			return n, err
		}
	}
}
