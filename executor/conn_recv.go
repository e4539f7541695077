//go:build linux

package executor

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/kasync-go/kasync/ring"
)

// recvQueue is a Conn's receiving side: one multishot receive into the
// loop's provided buffers, and the filled buffers it queued, which Read
// (and a splice, before it takes over) copy out. Its handler runs with the
// loop locked and takes mu, so mu is never held while taking the loop's lock.
type recvQueue struct {
	l  *loop
	mu sync.Mutex
	ms multishot // the receive; its state is guarded by mu too
	w  waker     // a Read sleeping for data

	bufs   []recvBuf // filled buffers not yet read, oldest first
	head   int
	br     *bufPool // the loop's, once a receive was armed
	noBufs bool     // the receive ended for want of buffers: receive into the caller's buffer
	eof    bool
	rerr   syscall.Errno // the error that ended receiving
}

// recvBuf is a provided buffer holding n unread bytes from off.
type recvBuf struct {
	id     uint16
	off, n int
}

func (q *recvQueue) init(l *loop, fd *sysFD) {
	q.l, q.w = l, newWaker()
	q.ms.init(l, fd, &q.mu, &q.w, prepRecv, q.handle)
}

func prepRecv(sqe *ring.SQE, fd int) { sqe.PrepRecvMultishot(fd, 0, netBufGroup) }

// recvNext says what Read does after looking at the queue.
type recvNext uint8

const (
	recvGot    recvNext = iota // return n bytes, or the error (EOF, the receive's)
	recvRearm                  // return n bytes, re-arming the drained receive first
	recvArm                    // arm the receive, then look again
	recvDirect                 // receive into the caller's buffer (no buffers)
	recvWait                   // wait on w, then look again
)

// next takes queued data into p, or says why there is none.
func (q *recvQueue) next(p []byte) (int, recvNext, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.head < len(q.bufs):
		n := q.takeLocked(p)
		if !q.ms.armed && q.head == len(q.bufs) && q.rerr == 0 && !q.eof {
			return n, recvRearm, nil
		}
		return n, recvGot, nil
	case q.rerr != 0:
		return 0, recvGot, os.NewSyscallError("read", q.rerr)
	case q.eof:
		return 0, recvGot, io.EOF
	case q.ms.armed:
		q.w.sleepLocked()
		return 0, recvWait, nil
	case q.noBufs:
		return 0, recvDirect, nil
	}
	return 0, recvArm, nil
}

// take copies queued data into p for a splice, and says whether the
// receive ended (EOF, or its error).
func (q *recvQueue) take(p []byte) (n int, eof bool, rerr syscall.Errno) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head < len(q.bufs) {
		n = q.takeLocked(p)
	}
	return n, q.eof, q.rerr
}

// pending reports whether there is anything for a Read: data, EOF or an
// error.
func (q *recvQueue) pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head < len(q.bufs) || q.eof || q.rerr != 0
}

// direct records the result of a receive into the caller's buffer: data
// (the multishot receive goes on at the next Read) or EOF.
func (q *recvQueue) direct(n int) {
	q.mu.Lock()
	if n > 0 {
		q.noBufs = false
	} else {
		q.eof = true
	}
	q.mu.Unlock()
}

// takeLocked copies queued data into p and hands drained buffers back.
func (q *recvQueue) takeLocked(p []byte) int {
	r := recycler{n: &q.l.net}
	n := 0
	for n < len(p) && q.head < len(q.bufs) {
		b := &q.bufs[q.head]
		m := copy(p[n:], q.br.Buf(b.id)[b.off:b.off+b.n])
		n += m
		b.off += m
		b.n -= m
		if b.n == 0 {
			q.head++
			r.add(b.id)
		}
	}
	if q.head == len(q.bufs) {
		q.bufs, q.head = q.bufs[:0], 0
	}
	r.flush()
	return n
}

// dropLocked hands every queued buffer back unread (Close).
func (q *recvQueue) dropLocked() {
	r := recycler{n: &q.l.net}
	for _, b := range q.bufs[q.head:] {
		r.add(b.id)
	}
	r.flush()
	q.bufs, q.head = nil, 0
}

// recycler hands buffers a connection held back to the loop, in batches.
type recycler struct {
	n   *netLoop
	ids [16]uint16
	k   int
}

func (r *recycler) add(id uint16) {
	r.ids[r.k] = id
	if r.k++; r.k == len(r.ids) {
		r.flush()
	}
}

func (r *recycler) flush() {
	r.n.recycle(r.ids[:r.k], true)
	r.k = 0
}

var errNoBufRing = errors.New("no provided-buffer ring")

// arm starts the multishot receive, first releasing the one that ended.
// The caller holds the Conn's rmu. errNoBufRing: the loop has no buffer ring.
func (q *recvQueue) arm() error {
	q.ms.release()
	br := q.l.bufRing()
	if br == nil {
		if q.l.isClosing() {
			return ErrClosed
		}
		return errNoBufRing
	}
	q.mu.Lock()
	q.br, q.noBufs = br, false
	q.mu.Unlock()
	return q.ms.start()
}

// stop cancels the multishot receive and waits for its end; the caller
// holds the Conn's rmu. The next Read arms a new one.
func (q *recvQueue) stop() { q.ms.stop() }

// handle handles each CQE of the receive, with the loop locked and mu
// held; full: the queue holds as many buffers as a connection may.
func (q *recvQueue) handle(res int32, flags uint32) (full bool) {
	switch {
	case res > 0 && flags&ring.CQEFBuffer != 0:
		id := uint16(flags >> 16)
		if q.ms.fd.isClosing() {
			q.l.net.recycle([]uint16{id}, false)
			break
		}
		q.l.net.lend()
		q.bufs = append(q.bufs, recvBuf{id: id, n: int(res)})
		return len(q.bufs)-q.head >= connMaxQueued
	case res == 0:
		q.eof = true
	case res == -int32(syscall.ENOBUFS):
		q.noBufs = true
	case res < 0 && !endedByCancel(res):
		q.rerr = syscall.Errno(-res)
	}
	return false
}
