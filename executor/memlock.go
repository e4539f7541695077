//go:build linux

package executor

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/kasync-go/kasync/ring"
)

// Locked memory (ring/memlock.go has what the kernel charges, measured).
// Without CAP_IPC_LOCK, every ring, buffer ring and registered buffer is
// charged to the user's RLIMIT_MEMLOCK, one counter for all the user's
// processes. The executor counts what its own rings and buffer rings lock
// (memlocked), sizes each new set of rings (New's loops, each Serve's
// loops) to at most half of what the limit leaves free, shrinks a ring the
// kernel still refuses, and where even the smallest is refused, falls back
// to the Go backend: New as a whole, or one Server.

// memlocked is what this process's rings and buffer rings lock now.
var memlocked atomic.Int64

func chargeRing(r *ring.Ring)   { memlocked.Add(int64(r.Memlock())) }
func unchargeRing(r *ring.Ring) { memlocked.Add(-int64(r.Memlock())) }

// Smallest rings sizing goes down to: enough for a loop to work, not fast.
const (
	minLoopEntries  = 64 // goroutine loops
	minHLoopEntries = 64 // fast-path loops
)

// memlockFree returns the locked memory free for this process's next rings
// (the limit less what this process locks) and whether there is a limit.
// Other processes of the user count too, unseen: the kernel's ENOMEM says so.
func memlockFree() (free int64, limited bool) {
	limit, charged := ring.MemlockLimit()
	if !charged || limit == ^uint64(0) {
		return 1<<63 - 1, false
	}
	return int64(limit) - memlocked.Load(), true
}

// memlockSizing is what sizeRings chose.
type memlockSizing struct {
	entries uint32
	loops   int
	note    string // why they are smaller than asked, or ""
}

// sizeRings sizes loops rings of entries SQEs each (each costing
// cost(entries) bytes of locked memory with its buffer ring) to at most
// half of the free locked memory: first fewer entries, down to minEntries,
// then fewer loops. It fails with a memlockError where one loop of
// minEntries does not fit.
func sizeRings(what string, loops int, entries, minEntries uint32, cost func(uint32) int) (memlockSizing, error) {
	sz := memlockSizing{entries: entries, loops: loops}
	free, limited := memlockFree()
	if !limited {
		return sz, nil
	}
	budget := free / 2
	minEntries = min(minEntries, entries)
	for sz.entries > minEntries && int64(sz.loops)*int64(cost(sz.entries)) > budget {
		sz.entries /= 2
	}
	sz.entries = max(sz.entries, minEntries)
	if c := int64(cost(sz.entries)); int64(sz.loops)*c > budget {
		sz.loops = int(budget / c)
	}
	if sz.loops < 1 {
		return sz, &memlockError{what: what, need: int64(cost(minEntries)), free: free}
	}
	if sz.entries != entries || sz.loops != loops {
		limit, _ := ring.MemlockLimit()
		sz.note = fmt.Sprintf("%s sized to RLIMIT_MEMLOCK %s: %d loops of %d entries (asked %d of %d)",
			what, ring.FormatBytes(limit), sz.loops, sz.entries, loops, entries)
	}
	return sz, nil
}

// memlockError is io_uring refused for want of locked memory: by the kernel
// (ENOMEM) or before asking, where this process's own rings leave too
// little. It wraps ring.ErrUnavailable and ENOMEM.
type memlockError struct {
	what       string
	need, free int64
	err        error // the kernel's refusal, if it refused
}

func (e *memlockError) Error() string {
	if errors.Is(e.err, ring.ErrUnavailable) {
		return fmt.Sprintf("%s: %v", e.what, e.err)
	}
	if e.err != nil {
		return fmt.Sprintf("%v: %s: %v", ring.ErrUnavailable, e.what, e.err)
	}
	return fmt.Sprintf("%v: %s: needs %s of locked memory, %s left (%s)", ring.ErrUnavailable, e.what,
		ring.FormatBytes(uint64(max(e.need, 0))), ring.FormatBytes(uint64(max(e.free, 0))), ring.MemlockHint())
}

func (e *memlockError) Is(target error) bool { return target == ring.ErrUnavailable }

func (e *memlockError) Unwrap() error {
	if e.err != nil {
		return e.err
	}
	return syscall.ENOMEM
}

// isMemlock reports whether err is a refusal for want of locked memory.
func isMemlock(err error) bool { return errors.Is(err, syscall.ENOMEM) }

// newRingShrinking sets up a ring of entries with opts(entries), and where
// the kernel refuses it locked memory, of half as many, down to minEntries.
func newRingShrinking(entries, minEntries uint32, opts func(uint32) []ring.Option) (*ring.Ring, error) {
	for {
		r, err := ring.New(entries, opts(entries)...)
		if err == nil {
			chargeRing(r)
			return r, nil
		}
		if !isMemlock(err) || entries/2 < minEntries {
			return nil, err
		}
		entries /= 2
	}
}

// limitString is RLIMIT_MEMLOCK in words.
func limitString() string {
	limit, _ := ring.MemlockLimit()
	if limit == ^uint64(0) {
		return "unlimited"
	}
	return ring.FormatBytes(limit)
}

// memlockCost is what one of the server's loops locks with a ring of n
// entries: the ring (CQ 8x) and its buffer ring's entries.
func (cfg *serveConfig) memlockCost(n uint32) int {
	count := cfg.bufCount
	if count == 0 {
		count = 512 // the larger of bufpool's defaults
	}
	return ring.MemlockCost(n, 8*n, ring.SetupCQSize|ring.SetupNoSQArray) + ring.BufRingMemlock(uint32(count))
}

// memlockRefused reports whether the loops failed for want of locked memory.
func memlockRefused(errs []error) bool {
	for _, err := range errs {
		if !isMemlock(err) {
			return false
		}
	}
	return len(errs) > 0
}

// serveFallback runs a server the kernel refused io_uring on Go's net, with
// one warning; under WithStrict it returns the refusal instead.
func (e *Executor) serveFallback(network, address string, h Handler, cfg serveConfig, why error) (*Server, error) {
	if e.strict {
		return nil, listenError(network, address, why)
	}
	s, err := e.serveGoBecause(network, address, h, cfg, why.Error())
	if err == nil {
		e.logger.Warn("kasync: serve: io_uring refused; this server runs on Go's net",
			"net", network, "addr", s.Addr().String(), "err", why)
	}
	return s, err
}

// memlockedNow is what this process's rings and buffer rings lock now.
func memlockedNow() int64 { return memlocked.Load() }
