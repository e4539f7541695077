//go:build linux

package executor

import (
	"github.com/kasync-go/kasync/ring"
	"sync"
	"sync/atomic"
)

// Provided buffers for multishot receive. Each goroutine loop has one
// bufPool (bufpool.go, the pool the fast path's loops use too), made the
// first time a connection on it reads, shared by all the loop's
// connections: the kernel picks a buffer when data arrives, the connection
// queues it until Read copies the data out, and then hands it back.
const (
	netBufGroup = 1        // buffer group id on a goroutine loop's ring
	netBufCount = 1024     // buffers per loop
	netBufSize  = 16 << 10 // bytes per buffer

	// connMaxQueued is how many filled buffers one connection may hold
	// unread. Past it, its multishot receive is cancelled and re-armed only
	// once Read drained the queue, so a connection that is not read cannot
	// starve the loop's pool; the kernel's socket buffer holds the rest.
	connMaxQueued = 8
)

// netLoop is a loop's networking state (the loop's net field).
type netLoop struct {
	mu   sync.Mutex // guards br, fail, dead; never held across I/O
	br   *bufPool   // plain receives, buffers back as they come
	fail bool       // the buffer ring could not be set up: read without it
	dead bool       // the ring is closed: buffers are no longer handed back

	// lent counts buffers the kernel filled and connections hold. It grows
	// only in onCQE, with the loop locked, and so never after ringClosed.
	lent atomic.Int64

	spliced atomic.Uint64 // bytes moved by SPLICE into connections and files
	dropped atomic.Uint64 // connections and datagrams dropped by filters

	ready atomic.Pointer[bufPool] // br once set up, read without locking
}

// bufRing returns the loop's buffer ring, setting it up on first use, or nil
// if it cannot be had (the loop is closed, or the kernel refused it); the
// caller then receives into its own buffer.
func (l *loop) bufRing() *bufPool {
	if br := l.net.ready.Load(); br != nil {
		return br
	}
	l.mu.Lock() // registration needs the ring to itself
	defer l.mu.Unlock()
	n := &l.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.br == nil && !n.fail && !n.dead && !l.closed {
		if free, _ := memlockFree(); free < int64(ring.BufRingMemlock(netBufCount)) {
			n.fail = true // the memlock limit: read into the caller's buffers
			return nil
		}
		br, err := newBufPool(l.r, netBufGroup, RecvPlain, netBufSize, netBufCount)
		if err != nil {
			n.fail = true
			return nil
		}
		n.br = br
		n.ready.Store(br)
	}
	return n.br
}

// lend counts a buffer the kernel filled as held by a connection. Called
// with the loop locked (from a receive's onCQE).
func (n *netLoop) lend() { n.lent.Add(1) }

// recycle hands buffers back to the kernel; held says whether they were
// counted by lend. Once the ring is closed they are only counted, and the
// last one frees the memory.
func (n *netLoop) recycle(ids []uint16, held bool) {
	if len(ids) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if held {
		n.lent.Add(-int64(len(ids)))
	}
	if n.dead {
		n.freeLocked()
		return
	}
	for _, id := range ids {
		n.br.recycle(id)
	}
	n.br.publish()
}

// ringClosed is called once the loop's ring is closed: the buffer memory is
// freed now, or when the last buffer a connection holds comes back.
func (n *netLoop) ringClosed() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dead = true
	n.freeLocked()
}

func (n *netLoop) freeLocked() {
	if n.lent.Load() == 0 && n.br != nil {
		n.br.close()
		n.br = nil
		n.ready.Store(nil)
	}
}
