//go:build linux

package executor

import (
	"errors"
	"fmt"
	"log/slog"

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

// startRings sets up e's loops, sized to what RLIMIT_MEMLOCK leaves
// (memlock.go), or returns the Go backend where the kernel refuses io_uring
// (unless c.strict).
func (e *Executor) startRings(c config) (*Executor, error) {
	ringOpts := func(entries uint32) []ring.Option {
		return append([]ring.Option{
			ring.WithCQSize(4 * entries), ring.WithClamp(),
			ring.WithCoopTaskrun(), ring.WithTaskrunFlag(), ring.WithSubmitAll(),
		}, c.ringOpts...)
	}
	fallback := func(err error) (*Executor, error) {
		e.Close()
		if !errors.Is(err, ring.ErrUnavailable) || c.strict {
			return nil, fmt.Errorf("executor: %w", err)
		}
		reason := logFallback(c.logger, err)
		g := newGoBackend(c.logger, reason)
		g.strict = c.strict
		return g, nil
	}
	sz, err := sizeRings("New", c.loops, c.entries, minLoopEntries, func(n uint32) int {
		return ring.MemlockCost(n, 4*n, ring.SetupCQSize) + ring.BufRingMemlock(netBufCount)
	})
	if err != nil {
		return fallback(err)
	}
	e.strict, e.reason = c.strict, sz.note
	for i := 0; i < sz.loops; i++ {
		l, err := newLoop(i, sz.entries, ringOpts, e.closing)
		if err != nil {
			if i > 0 && isMemlock(err) { // shrink: fewer loops
				e.reason = fmt.Sprintf("New sized to RLIMIT_MEMLOCK %s: the kernel refused loop %d of %d (%v)",
					limitString(), i+1, sz.loops, err)
				break
			}
			return fallback(err)
		}
		e.loops = append(e.loops, l)
	}
	return e, nil
}

// logFallback logs the one warning of a fallback to the Go backend, with
// the cause as attributes, and returns the cause in words.
func logFallback(logger *slog.Logger, err error) string {
	reason := err.Error()
	attrs := []any{"err", err}
	if ue, ok := errors.AsType[*ring.UnavailableError](err); ok {
		reason = ue.Cause()
		attrs = append(attrs, "errno", ue.Errno.Error())
	}
	logger.Warn("kasync: io_uring unavailable, falling back to Go's net and os", append(attrs, "cause", reason)...)
	return reason
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
