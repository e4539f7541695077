//go:build linux

package executor

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// A fast-path loop's ring and its receive buffers, set up on its thread.

// setup runs on the loop's thread: the ring must be created by the thread
// that will submit to it (SINGLE_ISSUER), and a registered ring fd is
// per-thread.
func (l *hloop) setup() error {
	cfg := l.cfg
	var err error
	if l.r, err = newLoopRing(cfg); err != nil {
		return err
	}
	if cfg.direct {
		var rl unix.Rlimit
		n := uint32(1 << 16)
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < uint64(n) {
			n = uint32(rl.Cur)
		}
		if err := l.r.RegisterFilesSparse(n); err != nil {
			return fmt.Errorf("direct files: %w", err)
		}
	}
	if cfg.zcThreshold > 0 && l.r.Supports(ring.OpSendZC) {
		l.zc = cfg.zcThreshold
	}
	return l.setupBuffers()
}

// setupBuffers registers the loop's receive buffers (bufpool.go) in the
// best mode the kernel has, or the one asked for.
func (l *hloop) setupBuffers() error {
	p, err := newBufPool(l.r, 0, l.cfg.recvMode, l.cfg.bufSize, l.cfg.bufCount)
	if err != nil {
		return err
	}
	l.bufs = p
	l.pub.mode.Store(int64(p.mode))
	return nil
}

// newLoopRing sets up a fast-path loop's ring on the calling thread (TCP
// and UDP loops alike): SINGLE_ISSUER with DEFER_TASKRUN where the kernel
// has it, each older set-up where not, shrunk to the memlock limit, its fd
// registered.
func newLoopRing(cfg *serveConfig) (*ring.Ring, error) {
	var r *ring.Ring
	var err error
	for _, extra := range [][]ring.Option{
		{ring.WithDeferTaskrun(), ring.WithTaskrunFlag(), ring.WithNoSQArray()},
		{ring.WithDeferTaskrun(), ring.WithTaskrunFlag()}, // before 6.6
		{ring.WithCoopTaskrun(), ring.WithTaskrunFlag()},  // before 6.1
	} {
		r, err = newRingShrinking(cfg.entries, min(cfg.entries, minHLoopEntries), func(n uint32) []ring.Option {
			opts := append([]ring.Option{ring.WithCQSize(8 * n), ring.WithClamp(), ring.WithSubmitAll()}, cfg.ringOpts...)
			if cfg.keepP {
				opts = append(opts, ring.WithRawEnter())
			}
			return append(opts, extra...)
		})
		if !errors.Is(err, syscall.EINVAL) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	r.RegisterRingFd() // an optimization; without it enter looks the fd up
	return r, nil
}
