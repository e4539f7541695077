// Command ringecho is the suite's ceiling for echo: a server written straight
// on kasync's ring package, with no runtime around it. One thread, one ring
// (SINGLE_ISSUER, DEFER_TASKRUN), multishot accept, multishot receive into a
// provided-buffer ring, each received buffer sent back as it is, one
// io_uring_enter per turn. It shows what the kernel allows on this machine,
// so how far the executor's servers are from it, and that the load generator
// can go that fast. It prints "listening on ADDR" once it accepts.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"runtime"
	"syscall"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

const (
	opAccept = iota
	opRecv
	opSend

	group    = 0
	bufCount = 4096
	bufSize  = 4096
)

// conn is a connection's send queue: buffer ids received and not yet sent
// back, in order; the head is in flight.
type conn struct {
	queue []uint16
	sent  int // bytes of the head already sent
	lens  []int
	open  bool
}

type server struct {
	r     *ring.Ring
	bufs  *ring.BufRing
	conns map[int32]*conn
	ln    int
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "address to listen on")
	flag.Parse()
	runtime.LockOSThread()
	ln, err := listen(*addr)
	if err != nil {
		log.Fatal(err)
	}
	r, err := ring.New(4096, ring.WithDeferTaskrun(), ring.WithCQSize(16384))
	if err != nil {
		log.Fatal(err)
	}
	r.RegisterRingFd()
	bufs, err := r.NewBufRing(group, bufCount, bufSize)
	if err != nil {
		log.Fatal(err)
	}
	s := &server{r: r, bufs: bufs, conns: map[int32]*conn{}, ln: ln}
	s.accept()
	fmt.Printf("listening on %s\n", *addr)
	if err := s.serve(); err != nil {
		log.Fatal(err)
	}
}

func listen(addr string) (int, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return -1, fmt.Errorf("address %q: want IPv4:PORT", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		return -1, err
	}
	return fd, unix.Listen(fd, 4096)
}

func (s *server) sqe() *ring.SQE {
	for {
		sqe, err := s.r.GetSQE()
		if err == nil {
			return sqe
		}
		if _, err := s.r.Submit(); err != nil && err != syscall.EBUSY && err != syscall.EAGAIN {
			log.Fatal(err)
		}
	}
}

func (s *server) accept() {
	sqe := s.sqe()
	sqe.PrepAcceptMultishot(s.ln, unix.SOCK_CLOEXEC)
	sqe.SetUserData(opAccept)
}

func (s *server) recv(fd int32) {
	sqe := s.sqe()
	sqe.PrepRecvMultishot(int(fd), 0, group)
	sqe.SetUserData(uint64(fd)<<8 | opRecv)
}

func (s *server) send(fd int32, c *conn) {
	id := c.queue[0]
	sqe := s.sqe()
	sqe.PrepSend(int(fd), s.bufs.Buf(id)[c.sent:c.lens[0]], unix.MSG_NOSIGNAL)
	sqe.SetUserData(uint64(fd)<<8 | opSend)
}

func (s *server) serve() error {
	cqes := make([]ring.CQE, 1024)
	for {
		if _, err := s.r.SubmitAndWait(1); err != nil && err != syscall.EINTR && err != syscall.EBUSY && err != syscall.EAGAIN {
			return err
		}
		for {
			n := s.r.PeekBatch(cqes)
			if n == 0 {
				break
			}
			for i := range n {
				s.handle(&cqes[i])
			}
			s.r.CQAdvance(uint32(n))
		}
	}
}

func (s *server) handle(cqe *ring.CQE) {
	fd := int32(cqe.UserData >> 8)
	switch cqe.UserData & 0xff {
	case opAccept:
		if cqe.Res >= 0 {
			s.conns[cqe.Res] = &conn{open: true}
			s.recv(cqe.Res)
		}
		if !cqe.More() {
			s.accept()
		}
	case opRecv:
		c := s.conns[fd]
		if cqe.Res > 0 {
			id, _ := cqe.BufferID()
			c.queue = append(c.queue, id)
			c.lens = append(c.lens, int(cqe.Res))
			if len(c.queue) == 1 {
				s.send(fd, c)
			}
		}
		if !cqe.More() {
			if cqe.Res == -int32(syscall.ENOBUFS) || cqe.Res > 0 {
				s.recv(fd)
			} else {
				c.open = false
				s.closeIfDone(fd, c)
			}
		}
	case opSend:
		c := s.conns[fd]
		if cqe.Res < 0 {
			c.open = false
			for _, id := range c.queue {
				s.bufs.Recycle(id)
			}
			c.queue, c.lens = c.queue[:0], c.lens[:0]
			s.closeIfDone(fd, c)
			return
		}
		c.sent += int(cqe.Res)
		if c.sent < c.lens[0] {
			s.send(fd, c)
			return
		}
		s.bufs.Recycle(c.queue[0])
		c.queue, c.lens, c.sent = c.queue[1:], c.lens[1:], 0
		if len(c.queue) > 0 {
			s.send(fd, c)
		}
	}
}

// closeIfDone closes a connection whose receive has ended once nothing is
// left to send.
func (s *server) closeIfDone(fd int32, c *conn) {
	if !c.open && len(c.queue) == 0 {
		delete(s.conns, fd)
		if err := unix.Close(int(fd)); err != nil && !errors.Is(err, unix.EBADF) {
			fmt.Fprintln(os.Stderr, "close:", err)
		}
	}
}
