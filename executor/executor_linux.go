//go:build linux

package executor

import (
	"errors"
	"fmt"

	"github.com/kasync-go/kasync/ring"
)

// The io_uring half of New, and its options: Linux only.

type ringConfig struct {
	ringOpts []ring.Option
}

// maxEntries bounds WithEntries (IORING_MAX_ENTRIES).
const maxEntries = ring.MaxEntries

// WithRingOptions adds ring setup options (for tests and experiments). It
// exists on Linux only, as package ring does.
func WithRingOptions(opts ...ring.Option) Option {
	return func(c *config) { c.ringOpts = append(c.ringOpts, opts...) }
}

// startRings sets up e's loops, or returns the Go backend where the kernel
// refuses io_uring (unless c.strict).
func (e *Executor) startRings(c config) (*Executor, error) {
	ringOpts := append([]ring.Option{
		ring.WithCQSize(4 * c.entries), ring.WithClamp(),
		ring.WithCoopTaskrun(), ring.WithTaskrunFlag(), ring.WithSubmitAll(),
	}, c.ringOpts...)
	for i := 0; i < c.loops; i++ {
		l, err := newLoop(i, c.entries, ringOpts, e.closing)
		if err != nil {
			e.Close()
			if errors.Is(err, ring.ErrUnavailable) && !c.strict {
				reason := err.Error()
				attrs := []any{"err", err}
				if ue, ok := errors.AsType[*ring.UnavailableError](err); ok {
					reason = ue.Cause()
					attrs = append(attrs, "errno", ue.Errno.Error())
				}
				c.logger.Warn("kasync: io_uring unavailable, falling back to Go's net and os", append(attrs, "cause", reason)...)
				return newGoBackend(c.logger, reason), nil
			}
			return nil, fmt.Errorf("executor: %w", err)
		}
		e.loops = append(e.loops, l)
	}
	return e, nil
}

// serveRingOptions adds ring options to every loop's ring (tests: hide features).
func serveRingOptions(opts ...ring.Option) ServeOption {
	return func(c *serveConfig) { c.ringOpts = append(c.ringOpts, opts...) }
}

// addStats adds the loop's counters to s.
func (l *loop) addStats(s *Stats) {
	l.mu.Lock()
	rs := l.lastRing
	if !l.closed {
		rs = l.r.Stats()
		s.CQDropped += uint64(l.r.Overflowed())
	}
	s.Submitted += rs.Submitted
	s.Enters += rs.Enters
	s.CQOverflows += rs.OverflowFlushes
	s.InFlight += l.table.live
	s.Stale += l.table.stale
	l.mu.Unlock()
	s.Completed += l.stats.completed.Load()
	s.Batches += l.stats.batches.Load()
	s.Cancels += l.stats.cancels.Load()
	s.SQFullWaits += l.stats.sqFullWaits.Load()
	s.SplicedBytes += l.net.spliced.Load()
	s.FilterDropped += l.net.dropped.Load()
}
