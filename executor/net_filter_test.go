//go:build linux

package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/seccomp"
	"golang.org/x/sys/unix"
)

// TestNetFilter drops connections from 127.0.0.2 and lets 127.0.0.1 through.
func TestNetFilter(t *testing.T) {
	e := newTestExecutor(t)
	var seen []netip.AddrPort
	ln, err := e.Listen("tcp", "127.0.0.1:0", WithFilter(func(remote netip.AddrPort) Verdict {
		seen = append(seen, remote) // Accept's goroutine only
		if remote.Addr() == netip.MustParseAddr("127.0.0.2") {
			return Drop
		}
		return Accept
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialFrom := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var dropped []net.Conn
	for range 3 {
		dropped = append(dropped, dialFrom("127.0.0.2"))
	}
	good := dialFrom("127.0.0.1")
	defer good.Close()
	s, err := ln.Accept() // skips the three dropped ones
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := addrPortOf(s.RemoteAddr()); got != addrPortOf(good.LocalAddr()) {
		t.Fatalf("accepted %v, want %v", got, good.LocalAddr())
	}
	roundTrip(t, good, s, "through the filter")
	for _, c := range dropped {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dropped connection read %v, want EOF or reset", err)
		}
		c.Close()
	}
	if n := ln.(DropCounter).Dropped(); n != 3 {
		t.Fatalf("Dropped() = %d, want 3", n)
	}
	if n := e.Stats().FilterDropped; n != 3 {
		t.Fatalf("Stats().FilterDropped = %d, want 3", n)
	}
	if len(seen) != 4 {
		t.Fatalf("filter saw %v", seen)
	}
}

func TestNetUDP(t *testing.T) {
	e := newTestExecutor(t)
	for _, tc := range []struct{ network, address string }{
		{"udp", "127.0.0.1:0"}, {"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}, {"udp", ":0"},
	} {
		t.Run(tc.network+" "+tc.address, func(t *testing.T) {
			if strings.Contains(tc.address, "::1") && !hasLoopback6() {
				t.Skip("no ::1 here")
			}
			a, err := e.ListenPacket(tc.network, tc.address)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := e.ListenPacket(tc.network, tc.address)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if _, ok := a.(*PacketConn); !ok {
				t.Fatalf("packet conn is %T", a)
			}
			to := b.LocalAddr().(*net.UDPAddr)
			if to.IP.IsUnspecified() {
				to = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: to.Port}
			}
			for _, msg := range []string{"one", "two", strings.Repeat("x", 1200)} {
				if n, err := a.WriteTo([]byte(msg), to); err != nil || n != len(msg) {
					t.Fatalf("WriteTo: %d, %v", n, err)
				}
				buf := make([]byte, 2048)
				n, from, err := b.ReadFrom(buf)
				if err != nil || string(buf[:n]) != msg {
					t.Fatalf("ReadFrom: %q, %v", buf[:n], err)
				}
				if addrPortOf(from).Port() != addrPortOf(a.LocalAddr()).Port() {
					t.Fatalf("from %v, sender %v", from, a.LocalAddr())
				}
			}
			b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, _, err := b.ReadFrom(make([]byte, 10)); !isTimeout(err) {
				t.Fatalf("ReadFrom past deadline: %v", err)
			}
			done := make(chan error, 1)
			b.SetReadDeadline(time.Time{})
			go func() { _, _, err := b.ReadFrom(make([]byte, 10)); done <- err }()
			time.Sleep(20 * time.Millisecond)
			b.Close()
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("ReadFrom after Close: %v", err)
			}
		})
	}
}

func TestNetPacketFilter(t *testing.T) {
	e := newTestExecutor(t)
	pc, err := e.ListenPacket("udp", "127.0.0.1:0", WithPacketFilter(func(from netip.AddrPort, b []byte) Verdict {
		if strings.HasPrefix(string(b), "spam") {
			return Drop
		}
		return Accept
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range []string{"spam 1", "spam 2", "ham"} {
		c.Write([]byte(m))
	}
	buf := make([]byte, 100)
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ham" {
		t.Fatalf("ReadFrom: %q, %v", buf[:n], err)
	}
	if d := pc.(DropCounter).Dropped(); d != 2 {
		t.Fatalf("Dropped() = %d, want 2", d)
	}
}

// TestNetNamespace listens and dials inside a network namespace made for
// the test: the listener cannot be reached from the process's namespace.
func TestNetNamespace(t *testing.T) {
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip command to make a network namespace")
	}
	name := "kasync-test-" + itoa(os.Getpid())
	if out, err := exec.Command(ipPath, "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace (not permitted here?): %v: %s", err, out)
	}
	defer exec.Command(ipPath, "netns", "del", name).Run()
	if out, err := exec.Command(ipPath, "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	ns := WithNamespace("/var/run/netns/" + name)
	e := newTestExecutor(t)
	ln, err := e.Listen("tcp", "127.0.0.1:0", ns)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if s, err := ln.Accept(); err == nil {
			io.Copy(s, s)
			s.Close()
		}
	}()
	// From the process's own namespace the port is not there.
	if c, err := e.Dial(context.Background(), "tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("reached the namespace's listener from outside")
	}
	c, err := e.Dial(context.Background(), "tcp", ln.Addr().String(), ns)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("inside"))
	got := make([]byte, 6)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "inside" {
		t.Fatalf("echo %q, %v", got, err)
	}
	if _, err := e.Listen("tcp", "127.0.0.1:0", WithNamespace("/nonexistent/ns")); err == nil {
		t.Fatal("Listen in a missing namespace succeeded")
	}
}

func init() {
	childFuncs["netFallback"] = netFallbackChild
}

// TestNetFallback: with io_uring refused by seccomp, Listen, Dial and
// ListenPacket return Go's own net types, and the filters still apply.
func TestNetFallback(t *testing.T) {
	out := runInChild(t, "netFallback")
	if !strings.Contains(out, "fallback ok") {
		t.Fatalf("child said: %s", out)
	}
}

func netFallbackChild() error {
	if err := seccomp.RefuseIOUring(); err != nil {
		return err
	}
	e, err := New(WithLogger(quietLogger))
	if err != nil {
		return err
	}
	defer e.Close()
	if e.Backend() != BackendGo {
		return errors.New("backend is " + string(e.Backend()))
	}
	ln, err := e.Listen("tcp", "127.0.0.1:0", WithFilter(func(r netip.AddrPort) Verdict {
		if r.Addr() == netip.MustParseAddr("127.0.0.2") {
			return Drop
		}
		return Accept
	}))
	if err != nil {
		return err
	}
	defer ln.Close()
	if _, ok := ln.(*Listener); ok {
		return errors.New("got a kasync listener")
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	bad, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer bad.Close()
	c, err := e.Dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	// Go's conn, wrapped so that the executor's Close closes it, with what
	// callers use of a *net.TCPConn.
	if _, ok := c.(interface {
		CloseWrite() error
		syscall.Conn
		io.ReaderFrom
		io.WriterTo
	}); !ok {
		return errors.New("Dial's conn has no CloseWrite, SyscallConn, ReadFrom, WriteTo")
	}
	s, err := ln.Accept()
	if err != nil {
		return err
	}
	defer s.Close()
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
		return errors.New("no ping")
	}
	if n := ln.(DropCounter).Dropped(); n != 1 {
		return errors.New("filter dropped " + itoa(int(n)))
	}
	if v, _ := unix.GetsockoptInt(fdOf(s), unix.SOL_SOCKET, unix.SO_KEEPALIVE); v != 1 {
		return errors.New("accepted connection without keep-alive")
	}
	// Accept's deadline works through the filtering wrapper.
	ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Now().Add(-time.Second))
	if _, err := ln.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("Accept past the deadline: %v", err)
	}
	pc, err := e.ListenPacket("udp", "127.0.0.1:0", WithPacketFilter(func(netip.AddrPort, []byte) Verdict { return Accept }))
	if err != nil {
		return err
	}
	defer pc.Close()
	uc, err := e.Dial(context.Background(), "udp", pc.LocalAddr().String())
	if err != nil {
		return err
	}
	defer uc.Close()
	uc.Write([]byte("dgram"))
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	dg := make([]byte, 16)
	if n, _, err := pc.ReadFrom(dg); err != nil || string(dg[:n]) != "dgram" {
		return fmt.Errorf("udp Dial: %d bytes, %v", n, err)
	}
	os.Stdout.WriteString("fallback ok\n")
	return nil
}

// fdOf returns the descriptor of a connection of Go's net package.
func fdOf(c net.Conn) int {
	fd := -1
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			rc.Control(func(f uintptr) { fd = int(f) })
		}
	}
	return fd
}
