//go:build linux

package executor

import (
	"context"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// sendQueue is a Conn's write-behind. A Write of at most sendBehindMax
// bytes copies them here, queues their SEND with the loop's next batch and
// returns: the writer does not park for the completion, and the SENDs of
// every goroutine that wrote in a turn go to the kernel in one enter. This
// is what Go's net does with the socket's own buffer, one step earlier: the
// bytes are the connection's once Write returns.
//
// At most one such SEND is in flight. The next write-side call (Write,
// CloseWrite, ReadFrom, a raw Write) first waits for it (wait), so the
// bytes go out in order and the copy is bounded; its deadline and Close cut
// that wait short, not the SEND. A SEND the socket takes in part is
// continued from its CQE. An error it ends with is the next call's error,
// as net reports an error of bytes already in the socket: at a later call.
//
// The SEND holds a reference on the descriptor, so a Close lets it finish
// (the real close(2) follows it, as the kernel sends what is in a closed
// socket's buffer) for up to closeLinger; then it is cancelled. The
// executor's Close cancels it at once.
//
// handle runs with the loop locked and takes mu, so mu is never held while
// taking the loop's lock.
type sendQueue struct {
	l  *loop
	fd *sysFD
	mu sync.Mutex
	w  waker // a write-side call waiting for the SEND

	buf  []byte // the bytes handed over
	off  int    // how many of them the kernel took
	cur  *op    // the SEND in flight (loop lock); nil when idle
	cut  bool   // the linger ran out: what is left is not sent (loop lock)
	busy bool   // a SEND of buf is in flight (mu)
	err  error  // how the last one failed, for the next call (mu)

	linger *time.Timer // cancels the SEND closeLinger after Close; stopped when it ends (mu)

	onCQE  func(res int32, flags uint32) // q.handle, bound once
	prepFn func(sqe *ring.SQE, o *op)    // q.prep, bound once
}

// sendBehindMax is the largest Write copied and sent behind the caller's
// back; a larger one waits for its SENDs, as before.
const sendBehindMax = 64 << 10

// closeLinger bounds how long a SEND queued before Close may go on after it.
const closeLinger = 30 * time.Second

func (q *sendQueue) init(l *loop, fd *sysFD) {
	q.l, q.fd, q.w = l, fd, newWaker()
	q.onCQE, q.prepFn = q.handle, q.prep
}

// start copies p and queues its SEND. The caller holds the Conn's wmu and
// has waited for the previous one.
func (q *sendQueue) start(p []byte) error {
	if err := q.fd.acquire(); err != nil {
		return err
	}
	if cap(q.buf) < len(p) {
		q.buf = make([]byte, len(p), max(len(p), 512))
	}
	q.buf = q.buf[:len(p)]
	copy(q.buf, p)
	q.mu.Lock()
	q.off, q.busy = 0, true
	q.mu.Unlock()
	l := q.l
	l.mu.Lock()
	defer l.mu.Unlock()
	// busy is set before the descriptor's closing is looked at, and Close
	// sets closing before it looks at busy: a Close racing this Write either
	// sees the SEND and lets it linger, or the SEND is not started. The
	// error goes to this Write alone (finish(nil)).
	err := q.stoppedLocked()
	if err == nil {
		err = q.fd.closedErr()
	}
	if err == nil {
		_, err = l.startLocked(q.prepFn, startSpec{})
	}
	if err != nil {
		q.finish(nil)
		return err
	}
	return nil
}

// prep fills in the SEND of what is left of buf (loop lock).
func (q *sendQueue) prep(sqe *ring.SQE, o *op) {
	sqe.PrepSend(q.fd.fd, q.buf[q.off:], unix.MSG_NOSIGNAL)
	o.onCQE, o.detached = q.onCQE, true
	q.cur = o
}

// handle is the SEND's CQE, with the loop locked: the SEND is done, failed,
// or took part, and the rest goes in a new SEND.
func (q *sendQueue) handle(res int32, _ uint32) {
	q.cur = nil
	switch {
	case res == -int32(syscall.EINTR):
		q.continueLocked() // interrupted before it sent anything: again
	case res < 0:
		q.finish(q.failure(res))
	case res == 0:
		q.finish(io.ErrShortWrite)
	case q.off+int(res) < len(q.buf):
		q.mu.Lock()
		q.off += int(res)
		q.mu.Unlock()
		q.continueLocked()
	default:
		q.finish(nil)
	}
}

// failure is the error a failed SEND leaves for the next call: for one
// cancelled, what cancelled it (the Conn's Close and its linger, the
// executor's Close), as for every other op (outcome.cancelCause).
func (q *sendQueue) failure(res int32) error {
	if cause := (outcome{res: res}).cancelCause(context.Background(), q.fd, q.l); cause != nil && cause != errCancelled {
		return cause
	}
	return syscall.Errno(-res)
}

// stoppedLocked says why the rest of buf must not be sent (loop lock): the
// executor is closing (its cancel of everything has gone by), or the
// linger after Close ran out.
func (q *sendQueue) stoppedLocked() error {
	switch {
	case q.l.closed || q.l.isClosing():
		return ErrClosed
	case q.cut:
		return errClosedFD
	}
	return nil
}

// continueLocked queues the SEND of the rest, from a CQE: in the middle of
// a reap, it must not reap, so with no room in the SQ a goroutine queues it.
func (q *sendQueue) continueLocked() {
	l := q.l
	if err := q.stoppedLocked(); err != nil {
		q.finish(err)
		return
	}
	if l.r.SQSpace() > 0 {
		sqe, _ := l.r.GetSQE()
		o := l.table.alloc(l)
		q.prep(sqe, o)
		l.table.begin(o, sqe)
		l.stats.started.Add(1)
		l.queueLocked()
		return
	}
	go func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := q.stoppedLocked(); err != nil {
			q.finish(err)
		} else if _, err := l.startLocked(q.prepFn, startSpec{}); err != nil {
			q.finish(err)
		}
	}()
}

// finish ends the queue's SEND with err (nil: all of buf went), wakes a
// waiting call and drops the SEND's reference on the descriptor.
func (q *sendQueue) finish(err error) {
	q.mu.Lock()
	q.busy = false
	if err != nil && q.err == nil {
		q.err = err
	}
	if q.linger != nil {
		q.linger.Stop()
		q.linger = nil
	}
	q.w.wakeLocked()
	q.mu.Unlock()
	q.fd.releaseRef()
}

// wait waits until no SEND is in flight and returns (once) how the last one
// failed. The write deadline and Close cut the wait short.
func (q *sendQueue) wait(dl *deadline) error {
	for {
		q.mu.Lock()
		if !q.busy {
			err := q.err
			q.err = nil
			q.mu.Unlock()
			return err
		}
		if err := q.fd.closedErr(); err != nil {
			q.mu.Unlock()
			return err
		}
		if dl != nil && dl.passed() {
			q.mu.Unlock()
			return os.ErrDeadlineExceeded
		}
		q.w.sleepLocked()
		q.mu.Unlock()
		q.l.reapReady()
		q.w.wait()
	}
}

// pending reports whether a SEND is in flight.
func (q *sendQueue) pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.busy
}

// lingerAfterClose cancels the SEND, if still in flight, closeLinger after
// Close. The timer stops when the SEND ends, so a closed Conn is not kept
// for closeLinger by it.
func (q *sendQueue) lingerAfterClose() {
	q.mu.Lock()
	if q.busy && q.linger == nil {
		q.linger = time.AfterFunc(closeLinger, q.cancel)
	}
	q.mu.Unlock()
}

// cancel asks the kernel to cancel the SEND in flight, if any.
func (q *sendQueue) cancel() {
	l := q.l
	l.mu.Lock()
	defer l.mu.Unlock()
	q.cut = true // a continuation not yet queued is not sent either
	if o := q.cur; o != nil && !l.closed && l.table.markCancel(o) {
		l.cancelLocked(opTarget(o))
		l.submitLocked()
	}
}
