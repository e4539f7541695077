//go:build linux

package executor

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestListenerDeadline: Accept with a deadline fails with a timeout once it
// passes, whether it was blocked or called later, even with a connection
// waiting; moving the deadline away makes Accept work again.
func TestListenerDeadline(t *testing.T) {
	e := newTestExecutor(t)
	nl, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := nl.(*Listener)
	defer ln.Close()
	isTimeout := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
	}

	// Blocked, then the deadline passes.
	const wait = 50 * time.Millisecond
	start := time.Now()
	if err := ln.SetDeadline(start.Add(wait)); err != nil {
		t.Fatal(err)
	}
	if c, err := ln.Accept(); !isTimeout(err) {
		t.Fatalf("Accept past the deadline = %v, %v; want a timeout", c, err)
	}
	if waited := time.Since(start); waited < wait {
		t.Errorf("Accept gave up after %v, before its deadline (%v)", waited, wait)
	}

	// A deadline in the past fails a connection that is waiting too.
	c, err := e.Dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln.SetDeadline(time.Now().Add(-time.Second))
	if _, err := ln.Accept(); !isTimeout(err) {
		t.Fatalf("Accept with a past deadline = %v; want a timeout", err)
	}

	// No deadline: the waiting connection comes.
	ln.SetDeadline(time.Time{})
	s, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept after the deadline was removed: %v", err)
	}
	s.Close()

	// A blocked Accept sees a deadline set after it began.
	done := make(chan error, 1)
	go func() { _, err := ln.Accept(); done <- err }()
	time.Sleep(10 * time.Millisecond)
	ln.SetDeadline(time.Now().Add(10 * time.Millisecond))
	if err := <-done; !isTimeout(err) {
		t.Fatalf("Accept blocked before SetDeadline = %v; want a timeout", err)
	}

	ln.Close()
	if err := ln.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetDeadline on a closed listener = %v; want net.ErrClosed", err)
	}
}

// TestDialUDP: Dial("udp") gives a connected net.Conn: a round trip with a
// PacketConn, datagrams from others not delivered, and a refused port
// reported as ECONNREFUSED.
func TestDialUDP(t *testing.T) {
	e := newTestExecutor(t)
	srv, err := e.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := e.Dial(context.Background(), "udp", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*UDPConn); !ok {
		t.Fatalf("Dial(udp) returned a %T", c)
	}
	if c.RemoteAddr().String() != srv.LocalAddr().String() {
		t.Errorf("RemoteAddr = %v; want %v", c.RemoteAddr(), srv.LocalAddr())
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	srv.SetDeadline(time.Now().Add(5 * time.Second))

	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, from, err := srv.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" || from.String() != c.LocalAddr().String() {
		t.Fatalf("server got %q from %v, %v; want ping from %v", buf[:n], from, err, c.LocalAddr())
	}

	// A stranger's datagram is not for the connected socket.
	stranger, err := e.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if _, err := stranger.WriteTo([]byte("stranger"), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("client Read = %q, %v; want pong", buf[:n], err)
	}

	// Nobody at the port: the kernel's ICMP answer fails a later call.
	srv.Close()
	var rerr error
	for range 10 {
		if _, rerr = c.Write([]byte("anyone?")); rerr != nil {
			break
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, rerr = c.Read(buf); rerr != nil && !errors.Is(rerr, os.ErrDeadlineExceeded) {
			break
		}
	}
	if !errors.Is(rerr, syscall.ECONNREFUSED) {
		t.Errorf("Write and Read to a closed port: %v; want ECONNREFUSED", rerr)
	}
	var oe *net.OpError
	if !errors.As(rerr, &oe) || oe.Net != "udp" {
		t.Errorf("error %v is not a *net.OpError of udp", rerr)
	}
}

// TestKeepAlive: TCP connections from Listen and Dial have keep-alive on
// with Go's defaults; WithKeepAlive sets other values or turns it off.
func TestKeepAlive(t *testing.T) {
	e := newTestExecutor(t)
	get := func(c net.Conn, level, opt int) int {
		t.Helper()
		v, err := unix.GetsockoptInt(c.(*Conn).fd.fd, level, opt)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	check := func(name string, c net.Conn, on, idle, intvl, cnt int) {
		t.Helper()
		if got := get(c, unix.SOL_SOCKET, unix.SO_KEEPALIVE); got != on {
			t.Errorf("%s: SO_KEEPALIVE = %d; want %d", name, got, on)
		}
		if on == 0 {
			return
		}
		if got := get(c, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); got != idle {
			t.Errorf("%s: TCP_KEEPIDLE = %d; want %d", name, got, idle)
		}
		if got := get(c, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL); got != intvl {
			t.Errorf("%s: TCP_KEEPINTVL = %d; want %d", name, got, intvl)
		}
		if got := get(c, unix.IPPROTO_TCP, unix.TCP_KEEPCNT); got != cnt {
			t.Errorf("%s: TCP_KEEPCNT = %d; want %d", name, got, cnt)
		}
	}
	pair := func(lo NetOption, do NetOption) (net.Conn, net.Conn) {
		t.Helper()
		var lopts []NetOption
		var dopts []NetOption
		if lo != nil {
			lopts, dopts = append(lopts, lo), append(dopts, do)
		}
		ln, err := e.Listen("tcp", "127.0.0.1:0", lopts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		c, err := e.Dial(context.Background(), "tcp", ln.Addr().String(), dopts...)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return c, s
	}
	c, s := pair(nil, nil)
	check("dialed, default", c, 1, 15, 15, 9)
	check("accepted, default", s, 1, 15, 15, 9)

	o := WithKeepAlive(net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 5 * time.Second, Count: 3})
	c, s = pair(o, o)
	check("dialed, set", c, 1, 30, 5, 3)
	check("accepted, set", s, 1, 30, 5, 3)

	off := WithKeepAlive(net.KeepAliveConfig{})
	c, s = pair(off, off)
	check("dialed, off", c, 0, 0, 0, 0)
	check("accepted, off", s, 0, 0, 0, 0)
}

// TestSyscallConn: a Conn's RawConn reaches the socket (Control), reads and
// writes through it wait on the ring for readiness and honour the deadline,
// and it fails with net.ErrClosed after Close.
func TestSyscallConn(t *testing.T) {
	e := newTestExecutor(t)
	_, c, s := listenAndDial(t, e, "tcp", "127.0.0.1:0")
	rc, err := s.(*Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var keep int
	if err := rc.Control(func(fd uintptr) { keep, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE) }); err != nil || keep != 1 {
		t.Fatalf("Control: SO_KEEPALIVE %d, %v", keep, err)
	}

	// A raw read waits until the peer writes.
	go func() {
		time.Sleep(20 * time.Millisecond)
		c.Write([]byte("hello"))
	}()
	buf := make([]byte, 16)
	var n int
	err = rc.Read(func(fd uintptr) bool {
		var rerr error
		n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	})
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("raw Read = %q, %v", buf[:n], err)
	}

	// A raw write, read back by the peer.
	err = rc.Write(func(fd uintptr) bool {
		_, werr := unix.Write(int(fd), []byte("raw"))
		return werr != unix.EAGAIN
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(c, buf[:3]); err != nil || string(buf[:n]) != "raw" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}

	// Nothing to read and a deadline: a timeout.
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	})
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("raw Read past the deadline = %v", err)
	}

	s.Close()
	if err := rc.Control(func(uintptr) {}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Control after Close = %v; want net.ErrClosed", err)
	}
}
