//go:build linux

package executor

import (
	"os"
	"sync"
	"syscall"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// rawConn is the syscall.RawConn of a Conn or a PacketConn, for what the
// API does not cover (socket options, mostly). Control runs f with the
// descriptor held open, so Close cannot reuse its number meanwhile. Read and
// Write call f until it returns true, waiting in between for readiness with
// a POLL_ADD on the ring, cut short by the connection's deadline or Close.
// The socket is in blocking mode: f should pass MSG_DONTWAIT. Reading
// through it while the connection's own receive is armed (after a Read)
// takes bytes from under that receive.
type rawConn struct {
	l        *loop
	fd       *sysFD
	rmu, wmu *sync.Mutex // the connection's: one reader, one writer, as net's RawConn
	rdl, wdl *deadline
	rop, wop *opSlot      // where the deadlines cancel the POLL
	sent     func() error // a Conn's sendsDone: bytes written before a raw write go first
	opError  func(op string, err error) error
}

func (rc *rawConn) Control(f func(fd uintptr)) error {
	if err := rc.fd.acquire(); err != nil {
		return rc.opError("raw-control", netError(err))
	}
	defer rc.fd.releaseRef()
	f(uintptr(rc.fd.fd))
	return nil
}

func (rc *rawConn) Read(f func(fd uintptr) (done bool)) error {
	rc.rmu.Lock()
	defer rc.rmu.Unlock()
	return rc.await("raw-read", rc.rdl, rc.rop, unix.POLLIN, f)
}

func (rc *rawConn) Write(f func(fd uintptr) (done bool)) error {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	if rc.sent != nil {
		if err := rc.sent(); err != nil {
			return rc.opError("raw-write", err)
		}
	}
	return rc.await("raw-write", rc.wdl, rc.wop, unix.POLLOUT, f)
}

func (rc *rawConn) await(name string, dl *deadline, slot *opSlot, events uint32, f func(uintptr) bool) error {
	for {
		done := false
		if err := rc.Control(func(fd uintptr) { done = f(fd) }); err != nil || done {
			return err
		}
		if dl.passed() {
			return rc.opError(name, os.ErrDeadlineExceeded)
		}
		if _, err := runFD(rc.l, rc.fd, slot, func(sqe *ring.SQE, fd int) { sqe.PrepPollAdd(fd, events) }); err != nil {
			return rc.opError(name, syscallErr("poll", err))
		}
	}
}

// SyscallConn returns the socket as a syscall.RawConn, like
// net.TCPConn.SyscallConn: Control, for socket options, is what it is for.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	return &rawConn{l: c.l, fd: c.fd, rmu: &c.rmu, wmu: &c.wmu, rdl: &c.rdl, wdl: &c.wdl, rop: &c.rop, wop: &c.wop,
		sent: c.sendsDone, opError: c.opError}, nil
}

// SyscallConn returns the socket as a syscall.RawConn, like
// net.UDPConn.SyscallConn.
func (pc *PacketConn) SyscallConn() (syscall.RawConn, error) {
	return &rawConn{l: pc.l, fd: pc.fd, rmu: &pc.rmu, wmu: &pc.wmu, rdl: &pc.rdl, wdl: &pc.wdl, rop: &pc.rop, wop: &pc.wop,
		opError: func(op string, err error) error { return pc.opError(op, nil, err) }}, nil
}

var (
	_ syscall.Conn = (*Conn)(nil)
	_ syscall.Conn = (*PacketConn)(nil)
)
