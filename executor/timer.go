//go:build linux

package executor

import (
	"context"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// Sleep waits for d (kasync's hrtimer sleep) with an io_uring TIMEOUT. It
// returns nil after d, the context's cause if ctx is done first, or
// ErrClosed if the executor closes.
func (e *Executor) Sleep(ctx context.Context, d time.Duration) error {
	l := e.loop()
	if l == nil {
		return sleepGo(ctx, d, e.closing)
	}
	_, err := l.do(ctx, func(sqe *ring.SQE, o *op) {
		o.ts = unix.NsecToTimespec(max(int64(d), 0))
		sqe.PrepTimeout(&o.ts, 0, 0)
	})
	if err == syscall.ETIME {
		return nil
	}
	return err
}
