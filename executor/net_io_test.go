//go:build linux

package executor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// listenAndDial returns a connected pair: c from Dial, s from Accept.
func listenAndDial(t testing.TB, e *Executor, network, address string) (ln net.Listener, c, s net.Conn) {
	t.Helper()
	ln, err := e.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	c, err = e.Dial(context.Background(), ln.Addr().Network(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { c.Close(); r.c.Close() })
	return ln, c, r.c
}

// acceptFromNet returns a connection from Go's net.Dial (peer, whose linger
// and close the test controls) and its end accepted by e (s).
func acceptFromNet(t testing.TB, e *Executor) (peer *net.TCPConn, s net.Conn) {
	t.Helper()
	ln, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	pc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if s, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	return pc.(*net.TCPConn), s
}

func roundTrip(t testing.TB, c, s net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(buf); err != nil {
		t.Fatal(err)
	}
	clear(buf)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != msg {
		t.Fatalf("echoed %q, want %q", buf, msg)
	}
}

func TestNetFamilies(t *testing.T) {
	e := newTestExecutor(t)
	cases := []struct {
		network, address string
		local            any
	}{
		{"tcp", "127.0.0.1:0", &net.TCPAddr{}},
		{"tcp4", "localhost:0", &net.TCPAddr{}},
		{"tcp6", "[::1]:0", &net.TCPAddr{}},
		{"unix", filepath.Join(t.TempDir(), "sock"), &net.UnixAddr{}},
		{"unix", "@kasync-test-abstract", &net.UnixAddr{}},
	}
	for _, tc := range cases {
		t.Run(tc.network+" "+tc.address, func(t *testing.T) {
			if tc.network == "tcp6" && !hasLoopback6() {
				t.Skip("no ::1 here")
			}
			ln, c, s := listenAndDial(t, e, tc.network, tc.address)
			if _, ok := ln.(*Listener); !ok {
				t.Fatalf("listener is %T", ln)
			}
			if _, ok := c.(*Conn); !ok {
				t.Fatalf("conn is %T", c)
			}
			roundTrip(t, c, s, "hello "+tc.network)
			for _, a := range []net.Addr{ln.Addr(), c.LocalAddr(), c.RemoteAddr(), s.LocalAddr(), s.RemoteAddr()} {
				if a == nil || a.Network() != ln.Addr().Network() {
					t.Fatalf("address %v (%T) of network %q", a, a, tc.network)
				}
				switch tc.local.(type) {
				case *net.TCPAddr:
					if _, ok := a.(*net.TCPAddr); !ok {
						t.Fatalf("address %T", a)
					}
				case *net.UnixAddr:
					if _, ok := a.(*net.UnixAddr); !ok {
						t.Fatalf("address %T", a)
					}
				}
			}
			if tc.network != "unix" && c.RemoteAddr().String() != s.LocalAddr().String() {
				t.Fatalf("dialer's remote %v, acceptor's local %v", c.RemoteAddr(), s.LocalAddr())
			}
		})
	}
}

// TestNetDualStack: a "tcp" listener on the wildcard takes IPv4 and IPv6.
func TestNetDualStack(t *testing.T) {
	e := newTestExecutor(t)
	ln, err := e.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	addrs := []string{net.JoinHostPort("127.0.0.1", itoa(port))}
	if hasLoopback6() {
		addrs = append(addrs, net.JoinHostPort("::1", itoa(port)))
	}
	for _, a := range addrs {
		c, err := e.Dial(context.Background(), "tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c, s, "dual "+a)
		if want := c.(*Conn).LocalAddrPort(); s.(*Conn).RemoteAddrPort() != want {
			t.Fatalf("acceptor sees %v, dialer is %v", s.(*Conn).RemoteAddrPort(), want)
		}
		c.Close()
		s.Close()
	}
}

func itoa(n int) string { return (&net.TCPAddr{Port: n}).String()[1:] }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

func TestNetReadDeadlineMidRead(t *testing.T) {
	e := newTestExecutor(t)
	_, c, s := listenAndDial(t, e, "tcp", "127.0.0.1:0")
	c.SetReadDeadline(time.Now().Add(time.Hour))
	go func() {
		time.Sleep(30 * time.Millisecond)
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)) // moved while Read blocks
	}()
	start := time.Now()
	n, err := c.Read(make([]byte, 10))
	if n != 0 || !isTimeout(err) {
		t.Fatalf("Read past deadline: %d, %v", n, err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("error %#v is no read *net.OpError", err)
	}
	if d := time.Since(start); d < 45*time.Millisecond || d > 5*time.Second {
		t.Fatalf("timed out after %v", d)
	}
	c.SetReadDeadline(time.Time{})
	roundTrip(t, c, s, "after the deadline")
}

func TestNetWriteDeadlineMidWrite(t *testing.T) {
	e := newTestExecutor(t)
	_, c, _ := listenAndDial(t, e, "tcp", "127.0.0.1:0")
	// The peer never reads: Write fills both socket buffers and blocks.
	big := make([]byte, 64<<20)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := c.Write(big)
	if !isTimeout(err) {
		t.Fatalf("Write past deadline: %d, %v", n, err)
	}
	if n == 0 || n >= len(big) {
		t.Fatalf("wrote %d of %d before the deadline", n, len(big))
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("error %#v is no write *net.OpError", err)
	}
	n, err = c.Write([]byte("x"))
	if n != 0 || !isTimeout(err) {
		t.Fatalf("Write after deadline: %d, %v", n, err)
	}
}

func TestNetPeerReset(t *testing.T) {
	e := newTestExecutor(t)
	peer, s := acceptFromNet(t, e)
	defer s.Close()
	read := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 10))
		read <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the Read block
	peer.SetLinger(0)                 // Close sends RST
	peer.Close()
	err := <-read
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after peer reset: %v", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("error %#v is no read *net.OpError", err)
	}
	if _, err := s.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("second Read: %v", err)
	}
}

func TestNetCloseWrite(t *testing.T) {
	e := newTestExecutor(t)
	for _, network := range []string{"tcp", "unix"} {
		addr := "127.0.0.1:0"
		if network == "unix" {
			addr = filepath.Join(t.TempDir(), "s")
		}
		_, c, s := listenAndDial(t, e, network, addr)
		if _, err := c.Write([]byte("request")); err != nil {
			t.Fatal(err)
		}
		if err := c.(*Conn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s) // ends at EOF
		if err != nil || string(got) != "request" {
			t.Fatalf("%s: peer read %q, %v", network, got, err)
		}
		if _, err := s.Write([]byte("response")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		got, err = io.ReadAll(c)
		if err != nil || string(got) != "response" {
			t.Fatalf("%s: half-closed side read %q, %v", network, got, err)
		}
		if _, err := c.Write([]byte("more")); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("%s: Write after CloseWrite: %v", network, err)
		}
	}
}

func TestNetCloseUnblocksReadAndWrite(t *testing.T) {
	e := newTestExecutor(t)
	_, c, _ := listenAndDial(t, e, "tcp", "127.0.0.1:0")
	var wg sync.WaitGroup
	var rerr, werr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, rerr = c.Read(make([]byte, 10))
	}()
	go func() {
		defer wg.Done()
		_, werr = c.Write(make([]byte, 64<<20)) // the peer never reads
	}()
	time.Sleep(50 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !errors.Is(rerr, net.ErrClosed) || !errors.Is(werr, net.ErrClosed) {
		t.Fatalf("after Close: Read %v, Write %v", rerr, werr)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}

func TestNetListenerCloseUnblocksAccept(t *testing.T) {
	e := newTestExecutor(t)
	ln, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ln.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

// TestNetExecutorCloseUnblocks: the executor's Close ends blocked Accept,
// Read and Write with errors that are both net.ErrClosed and ErrClosed.
func TestNetExecutorCloseUnblocks(t *testing.T) {
	e, err := New(WithStrict())
	if err != nil {
		t.Fatal(err)
	}
	ln, c, _ := listenAndDial(t, e, "tcp", "127.0.0.1:0")
	errs := make(chan error, 3)
	go func() { _, err := ln.Accept(); errs <- err }()
	go func() { _, err := c.Read(make([]byte, 1)); errs <- err }()
	go func() { _, err := c.Write(make([]byte, 64<<20)); errs <- err }()
	time.Sleep(50 * time.Millisecond)
	e.Close()
	for range 3 {
		if err := <-errs; !errors.Is(err, net.ErrClosed) || !errors.Is(err, ErrClosed) {
			t.Fatalf("after the executor's Close: %v", err)
		}
	}
	if _, err := e.Dial(context.Background(), "tcp", ln.Addr().String()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial after the executor's Close: %v", err)
	}
}

func TestNetDialRefused(t *testing.T) {
	e := newTestExecutor(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = e.Dial(context.Background(), "tcp", addr)
	var oe *net.OpError
	if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &oe) || oe.Op != "dial" {
		t.Fatalf("Dial to a closed port: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Dial(ctx, "tcp", addr); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial with a cancelled context: %v", err)
	}
}

func TestNetCopyGeneric(t *testing.T) {
	e := newTestExecutor(t)
	_, c, s := listenAndDial(t, e, "tcp", "127.0.0.1:0")
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	go func() {
		io.Copy(c, bytes.NewReader(want)) // ReadFrom, no splice
		c.(*Conn).CloseWrite()
	}()
	var got bytes.Buffer
	if _, err := io.Copy(&got, s); err != nil { // WriteTo, no splice
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("copied %d bytes, differing", got.Len())
	}
}
