package executor

import (
	"context"
	"os"
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
	ctx      context.Context // done once Close begins
	rdl, wdl *deadline
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
	return rc.await("raw-read", rc.rdl, unix.POLLIN, f)
}

func (rc *rawConn) Write(f func(fd uintptr) (done bool)) error {
	return rc.await("raw-write", rc.wdl, unix.POLLOUT, f)
}

func (rc *rawConn) await(name string, dl *deadline, events uint32, f func(uintptr) bool) error {
	for {
		done := false
		if err := rc.Control(func(fd uintptr) { done = f(fd) }); err != nil || done {
			return err
		}
		if dl.passed() {
			return rc.opError(name, os.ErrDeadlineExceeded)
		}
		if _, err := runOn(rc.l, rc.fd, rc.ctx, dl.done(),
			func(sqe *ring.SQE, fd int) { sqe.PrepPollAdd(fd, events) }); err != nil {
			return rc.opError(name, syscallErr("poll", err))
		}
	}
}

// SyscallConn returns the socket as a syscall.RawConn, like
// net.TCPConn.SyscallConn: Control, for socket options, is what it is for.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	return &rawConn{l: c.l, fd: c.fd, ctx: c.ctx, rdl: &c.rdl, wdl: &c.wdl, opError: c.opError}, nil
}

// SyscallConn returns the socket as a syscall.RawConn, like
// net.UDPConn.SyscallConn.
func (pc *PacketConn) SyscallConn() (syscall.RawConn, error) {
	return &rawConn{l: pc.l, fd: pc.fd, ctx: pc.ctx, rdl: &pc.rdl, wdl: &pc.wdl,
		opError: func(op string, err error) error { return pc.opError(op, nil, err) }}, nil
}

var (
	_ syscall.Conn = (*Conn)(nil)
	_ syscall.Conn = (*PacketConn)(nil)
)
