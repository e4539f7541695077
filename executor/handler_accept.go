//go:build linux

package executor

import (
	"syscall"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// Accepting connections: the loop's multishot accept, its errors and
// retry, the Unix hand-off between loops, and a new connection's start.

// flushAccept keeps the accept armed, or, once the loop stops accepting,
// cancels it and closes the listening socket.
func (l *hloop) flushAccept() {
	if !l.stopping && !l.noAccept {
		if l.acceptOp == nil && l.lnfd >= 0 && !l.acceptErr {
			l.armAccept()
		}
		return
	}
	if l.acceptOp != nil && !l.acceptCancel {
		l.acceptCancel = true
		l.cancelOp(l.acceptOp)
	}
	if l.acceptOp == nil && l.lnfd >= 0 {
		unix.Close(l.lnfd) // connections still in its backlog are refused
		l.lnfd = -1
	}
}

func (l *hloop) armAccept() {
	s := l.sqe()
	if l.cfg.direct {
		s.PrepAcceptMultishot(l.lnfd, 0)
		s.SetFileIndex(ring.FileIndexAlloc)
	} else {
		s.PrepAcceptMultishot(l.lnfd, unix.SOCK_CLOEXEC)
	}
	l.acceptOp = l.newOp(s, l.acceptCB)
}

func (l *hloop) onAccept(res int32, flags uint32) {
	if flags&ring.CQEFMore == 0 {
		l.acceptOp = nil
	}
	if res < 0 {
		if endedByCancel(res) || l.stopping {
			return
		}
		// Out of descriptors or memory: retry soon, and say so now and then.
		l.st[ctrAcceptErrors]++
		now := time.Now()
		l.acceptErr, l.acceptAt = true, now.Add(10*time.Millisecond)
		if now.Sub(l.acceptLog) > time.Second {
			l.acceptLog = now
			l.cfg.logger.Warn("kasync: serve: accept failed, retrying", "loop", l.id, "op", "accept", "errno", syscall.Errno(-res).Error())
		}
		return
	}
	if l.stopping || l.noAccept {
		l.closeLater(res)
		return
	}
	if l.s.handoff {
		t := l.s.loops[l.acceptRR%len(l.s.loops)]
		l.acceptRR++
		if t != l {
			if !t.post(hmsg{kind: hmsgAdopt, fd: int(res)}, nil) {
				unix.Close(int(res))
			}
			return
		}
	}
	l.newConn(res, l.cfg.direct)
}

// closeLater closes a descriptor accepted while stopping.
func (l *hloop) closeLater(fd int32) {
	if l.cfg.direct {
		// A registered slot goes with the ring's file table at Close.
		return
	}
	unix.Close(int(fd))
}

func (l *hloop) newConn(fd int32, fixed bool) {
	c := &HConn{fd: fd, fixed: fixed}
	c.recvCB, c.sendCB = c.onRecv, c.onSend
	l.addConn(c)
}
