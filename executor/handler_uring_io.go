//go:build linux

package executor

import (
	"io"
	"syscall"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// uringIO is connIO on a loop's ring: a multishot receive into the loop's
// buffer ring, one SEND (or SEND_ZC) at a time, ASYNC_CANCEL to stop either
// (cancelOp), and CLOSE. The ops' CQEs come to onRecv and onSend, which
// pass them on to the state machine's completion handlers.
type uringIO struct{ l *hloop }

func (u uringIO) room() bool { return u.l.sqeSpace(3) }

func (u uringIO) startRecv(c *HConn) {
	l := u.l
	s := l.sqe()
	if c.st&hsThrottled != 0 {
		// One buffer per receive: a connection whose input is held now
		// and then stops at once when it is, rather than after what a
		// multishot receive brings before its cancellation (the whole
		// socket queue, copied to be kept).
		s.PrepRecv(int(c.fd), nil, 0)
		s.SetBufferGroup(l.bufs.Group())
	} else {
		s.PrepRecvMultishot(int(c.fd), 0, l.bufs.Group())
	}
	if l.bufs.mode == RecvBundle {
		s.IoPrio |= ring.RecvSendBundle
	}
	if c.fixed {
		s.Flags |= ring.SQEFixedFile
	}
	c.recvOp = l.newOp(s, c.recvCB)
}

func (u uringIO) stopRecv(c *HConn) { u.l.cancelOp(c.recvOp) }

func (u uringIO) startSend(c *HConn, buf []byte) {
	l := u.l
	s := l.sqe()
	if c.st&hsBorrowed != 0 {
		// From a receive buffer (WriteNoCopy): it never waits, so that the
		// buffer goes back within the turn; what it does not take, sendDone
		// copies.
		s.PrepSend(int(c.fd), buf, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
	} else if l.zc > 0 && len(buf) >= l.zc {
		s.PrepSendZC(int(c.fd), buf, unix.MSG_NOSIGNAL, 0)
		l.st[ctrZCSends]++
	} else {
		s.PrepSend(int(c.fd), buf, unix.MSG_NOSIGNAL)
	}
	if c.fixed {
		s.Flags |= ring.SQEFixedFile
	}
	c.sendOp = l.newOp(s, c.sendCB)
}

func (u uringIO) stopSend(c *HConn) { u.l.cancelOp(c.sendOp) }

func (u uringIO) hold(b []byte) (uint16, bool) { return u.l.bufs.hold(b) }
func (u uringIO) release(bid uint16)           { u.l.bufs.release(bid) }

func (u uringIO) shutdownWrite(c *HConn) {
	l := u.l
	s := l.sqe()
	s.PrepShutdown(int(c.fd), unix.SHUT_WR)
	if c.fixed {
		s.Flags |= ring.SQEFixedFile
	}
	l.newOp(s, l.closeCB) // its result changes nothing: a failed FIN shows as an error on the socket
}

// closeFD closes through the ring, or directly once the ring broke.
func (u uringIO) closeFD(c *HConn) {
	l := u.l
	if l.failed != nil {
		if !c.fixed {
			unix.Close(int(c.fd))
		}
		return
	}
	s := l.sqe()
	if c.fixed {
		s.PrepCloseDirect(uint32(c.fd))
	} else {
		s.PrepClose(int(c.fd))
	}
	l.newOp(s, l.closeCB)
}

// onRecv handles the multishot receive's CQEs: bytes for the handler
// (received, from the buffer ring), and at the last one the receive's end.
func (c *HConn) onRecv(res int32, flags uint32) {
	l := c.l
	if res > 0 {
		l.bufs.deliver(c, res, flags)
	}
	if flags&ring.CQEFMore != 0 {
		return
	}
	c.recvOp = nil
	var err error
	switch {
	case res == 0:
		err = io.EOF
	case res == -int32(syscall.ENOBUFS):
		l.st[ctrNoBufs]++ // re-armed, once the turn has recycled buffers
	case endedByCancel(res):
		err = errCancelled // paused or closing
	case res < 0:
		err = syscall.Errno(-res)
	}
	c.recvEnded(err)
}

// onSend handles a send's CQEs: one, or for zero-copy the result (with
// CQEFMore) and then the notification that the buffer is free.
func (c *HConn) onSend(res int32, flags uint32) {
	if flags&ring.CQEFMore != 0 {
		c.zcRes = res
		return
	}
	if flags&ring.CQEFNotif != 0 {
		res = c.zcRes
	}
	c.sendOp = nil
	if res < 0 {
		c.sendDone(0, syscall.Errno(-res))
		return
	}
	c.sendDone(int(res), nil)
}
