//go:build linux

package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kasync-go/kasync/ring"
)

// Parity with Go's net and os: each test runs kasync's call on both
// backends and the same call on net or os, and compares what comes back.

// freePort returns a TCP and UDP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// addrShape is an address with its port replaced by "P" if it was asked as
// 0 (any port), and the type and network.
func addrShape(t *testing.T, a net.Addr, anyPort bool) string {
	t.Helper()
	s := a.String()
	if anyPort {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			t.Fatalf("address %q: %v", s, err)
		}
		if port == "0" {
			t.Errorf("address %q: port 0, want one picked", s)
		}
		s = net.JoinHostPort(host, "P")
	}
	return fmt.Sprintf("%T %s %s", a, a.Network(), s)
}

// errShape is what two errors must share: the message, the types of the
// error and of what a *net.OpError wraps, and whether its addresses are set.
func errShape(err error) string {
	var oe *net.OpError
	if !errors.As(err, &oe) {
		return fmt.Sprintf("%T %q", err, err.Error())
	}
	return fmt.Sprintf("%T{Op:%s Net:%s Source:%v Addr:%v Err:%T} %q", err, oe.Op, oe.Net, oe.Source != nil, oe.Addr != nil, oe.Err, err.Error())
}

// anyPort reports whether address asks for any port.
func anyPort(address string) bool {
	if address == "" {
		return true
	}
	_, port, err := net.SplitHostPort(address)
	return err == nil && (port == "" || port == "0")
}

var listenCases = []struct{ network, address string }{
	{"tcp", ""}, {"tcp", ":0"}, {"tcp", ":{port}"}, {"tcp", "127.0.0.1:"}, {"tcp", "127.0.0.1:0"},
	{"tcp", "localhost:0"}, {"tcp", "[::]:0"}, {"tcp", "0.0.0.0:0"}, {"tcp", "[::1]:0"},
	{"tcp4", ""}, {"tcp4", ":0"}, {"tcp4", "[::]:0"}, {"tcp4", "0.0.0.0:0"}, {"tcp4", "[::1]:0"},
	{"tcp6", ""}, {"tcp6", ":0"}, {"tcp6", "[::]:0"}, {"tcp6", "0.0.0.0:0"}, {"tcp6", "127.0.0.1:0"},
	{"tcp", "127.0.0.1"}, {"tcp", ":99999"}, {"tcp", "127.0.0.1:{busy}"}, {"tcp", ":{busy}"}, {"tcp", "[::]:{busy}"}, {"foo", ":0"},
}

var listenPacketCases = []struct{ network, address string }{
	{"udp", ""}, {"udp", ":0"}, {"udp", ":{port}"}, {"udp", "127.0.0.1:"}, {"udp", "127.0.0.1:0"},
	{"udp", "localhost:0"}, {"udp", "[::]:0"}, {"udp", "0.0.0.0:0"}, {"udp", "[::1]:0"},
	{"udp4", ""}, {"udp4", ":0"}, {"udp4", "[::]:0"}, {"udp4", "0.0.0.0:0"},
	{"udp6", ""}, {"udp6", ":0"}, {"udp6", "[::]:0"}, {"udp6", "0.0.0.0:0"},
	{"udp", "127.0.0.1"}, {"udp", ":99999"}, {"udp", "127.0.0.1:{busy}"}, {"udp", ":{busy}"}, {"foo", ":0"},
}

// fillPorts replaces {port} with a free port and {busy} with one in use
// (the returned closer frees it).
func fillPorts(t *testing.T, network, address string) (string, func()) {
	t.Helper()
	address = strings.ReplaceAll(address, "{port}", freePort(t))
	if !strings.Contains(address, "{busy}") {
		return address, func() {}
	}
	var c io.Closer
	var port int
	if strings.HasPrefix(network, "udp") {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, port = pc, pc.LocalAddr().(*net.UDPAddr).Port
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, port = ln, ln.Addr().(*net.TCPAddr).Port
	}
	return strings.ReplaceAll(address, "{busy}", strconv.Itoa(port)), func() { c.Close() }
}

func TestParityListen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		for _, tc := range listenCases {
			t.Run(tc.network+" "+tc.address, func(t *testing.T) {
				address, free := fillPorts(t, tc.network, tc.address)
				defer free()
				ln, err := e.Listen(tc.network, address)
				var got string
				if err == nil {
					got = addrShape(t, ln.Addr(), anyPort(address))
					ln.Close()
				} else {
					got = errShape(err)
				}
				var want string
				if wln, err := net.Listen(tc.network, address); err == nil {
					want = addrShape(t, wln.Addr(), anyPort(address))
					wln.Close()
				} else {
					want = errShape(err)
				}
				if got != want {
					t.Errorf("Listen(%q, %q):\n got %s\nwant %s", tc.network, address, got, want)
				}
			})
		}
	})
}

func TestParityListenPacket(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		for _, tc := range listenPacketCases {
			t.Run(tc.network+" "+tc.address, func(t *testing.T) {
				address, free := fillPorts(t, tc.network, tc.address)
				defer free()
				pc, err := e.ListenPacket(tc.network, address)
				var got string
				if err == nil {
					got = addrShape(t, pc.LocalAddr(), anyPort(address))
					pc.Close()
				} else {
					got = errShape(err)
				}
				var want string
				if wpc, err := net.ListenPacket(tc.network, address); err == nil {
					want = addrShape(t, wpc.LocalAddr(), anyPort(address))
					wpc.Close()
				} else {
					want = errShape(err)
				}
				if got != want {
					t.Errorf("ListenPacket(%q, %q):\n got %s\nwant %s", tc.network, address, got, want)
				}
			})
		}
	})
}

// TestParityWrongCall: Listen refuses packet networks and ListenPacket
// stream ones, naming the call to use, in a *net.OpError as net's
// UnknownNetworkError comes (net itself fails them too, less clearly).
func TestParityWrongCall(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		listen           func(e *Executor, network, address string) error
		network, address string
		use              string
	}{
		{listenOnly, "udp", "127.0.0.1:0", "ListenPacket"},
		{listenOnly, "udp4", ":0", "ListenPacket"},
		{listenOnly, "udp6", "", "ListenPacket"},
		{listenOnly, "unixgram", filepath.Join(dir, "g"), "ListenPacket"},
		{listenPacketOnly, "tcp", "127.0.0.1:0", "Listen"},
		{listenPacketOnly, "tcp4", ":0", "Listen"},
		{listenPacketOnly, "tcp6", "", "Listen"},
		{listenPacketOnly, "unix", filepath.Join(dir, "s"), "Listen"},
	}
	forEachBackend(t, func(t *testing.T, e *Executor) {
		for _, tc := range cases {
			err := tc.listen(e, tc.network, tc.address)
			var oe *net.OpError
			if !errors.As(err, &oe) {
				t.Errorf("%s %q: %v (%T), want a *net.OpError", tc.network, tc.address, err, err)
				continue
			}
			if oe.Op != "listen" || oe.Net != tc.network || oe.Addr != nil || oe.Source != nil {
				t.Errorf("%s %q: %#v, want Op listen, Net %s, no addresses (as net's unknown network)", tc.network, tc.address, oe, tc.network)
			}
			if want := "use " + tc.use; !strings.Contains(err.Error(), want) {
				t.Errorf("%s %q: %q does not say %q", tc.network, tc.address, err, want)
			}
		}
	})
}

func listenOnly(e *Executor, network, address string) error {
	ln, err := e.Listen(network, address)
	if err == nil {
		ln.Close()
	}
	return err
}

func listenPacketOnly(e *Executor, network, address string) error {
	pc, err := e.ListenPacket(network, address)
	if err == nil {
		pc.Close()
	}
	return err
}

// TestParityDialErrors: Dial's errors for bad networks and addresses are
// net's.
func TestParityDialErrors(t *testing.T) {
	closed := freePort(t)
	cases := []struct{ network, address string }{
		{"foo", "127.0.0.1:80"}, {"", "127.0.0.1:80"},
		{"tcp", ""}, {"tcp", "127.0.0.1"}, {"tcp", "127.0.0.1:99999"}, {"tcp4", "[::1]:80"},
		{"tcp6", "127.0.0.1:80"}, {"tcp", "127.0.0.1:" + closed},
		{"udp", ""}, {"udp", "127.0.0.1"}, {"udp4", "[::1]:80"},
	}
	forEachBackend(t, func(t *testing.T, e *Executor) {
		for _, tc := range cases {
			ctx := context.Background()
			got, want := "ok", "ok"
			if c, err := e.Dial(ctx, tc.network, tc.address); err != nil {
				got = errShape(err)
			} else {
				c.Close()
			}
			if c, err := new(net.Dialer).DialContext(ctx, tc.network, tc.address); err != nil {
				want = errShape(err)
			} else {
				c.Close()
			}
			if got != want {
				t.Errorf("Dial(%q, %q):\n got %s\nwant %s", tc.network, tc.address, got, want)
			}
		}
	})
}

// TestParityConnErrors: a connection's errors name both its addresses, as
// net's do, though LocalAddr and RemoteAddr were never called, on the
// accepted side and the dialed side, and after Close.
func TestParityConnErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		ln, err := e.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		dialed, err := e.Dial(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer dialed.Close()
		accepted, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer accepted.Close()
		for _, side := range []struct {
			name string
			c    net.Conn
		}{{"accepted", accepted}, {"dialed", dialed}} {
			c := side.c
			c.SetReadDeadline(time.Now().Add(-time.Second))
			_, rerr := c.Read(make([]byte, 1))
			// Clear the deadline: with one passed, a Read after Close on
			// io_uring reports the deadline, where net reports the Close
			// (left as found: conn.go's read checks the deadline first).
			c.SetReadDeadline(time.Time{})
			c.Close()
			_, cerr := c.Read(make([]byte, 1))
			xerr := c.Close()
			// Only now ask for the addresses.
			local, remote := c.LocalAddr().String(), c.RemoteAddr().String()
			for _, w := range []struct {
				err  error
				want string
			}{
				{rerr, "read tcp " + local + "->" + remote + ": i/o timeout"},
				{cerr, "read tcp " + local + "->" + remote + ": use of closed network connection"},
				{xerr, "close tcp " + local + "->" + remote + ": use of closed network connection"},
			} {
				var oe *net.OpError
				if !errors.As(w.err, &oe) || oe.Source == nil || oe.Addr == nil {
					t.Errorf("%s: %#v, want a *net.OpError with Source and Addr", side.name, w.err)
				}
				if w.err == nil || w.err.Error() != w.want {
					t.Errorf("%s: %v, want %s", side.name, w.err, w.want)
				}
			}
		}
	})
}

// TestParityPacketAndListenerErrors: a PacketConn's errors name its local
// address (and a connected one's peer), a Listener's its address.
func TestParityPacketAndListenerErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		pc, err := e.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		local := pc.LocalAddr().String()
		pc.SetReadDeadline(time.Now().Add(-time.Second))
		_, _, rerr := pc.ReadFrom(make([]byte, 1))
		pc.Close()
		xerr := pc.Close()

		uc, err := e.Dial(context.Background(), "udp", local)
		if err != nil {
			t.Fatal(err)
		}
		ulocal := uc.LocalAddr().String()
		uc.SetReadDeadline(time.Now().Add(-time.Second))
		_, uerr := uc.Read(make([]byte, 1))
		uc.Close()

		ln, err := e.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		laddr := ln.Addr().String()
		ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Now().Add(-time.Second))
		_, aerr := ln.Accept()
		ln.Close()
		lerr := ln.Close()
		for _, w := range []struct {
			err  error
			want string
		}{
			{rerr, "read udp " + local + ": i/o timeout"},
			{xerr, "close udp " + local + ": use of closed network connection"},
			{uerr, "read udp " + ulocal + "->" + local + ": i/o timeout"},
			{aerr, "accept tcp " + laddr + ": i/o timeout"},
			{lerr, "close tcp " + laddr + ": use of closed network connection"},
		} {
			if w.err == nil || w.err.Error() != w.want {
				t.Errorf("%v, want %s", w.err, w.want)
			}
		}
	})
}

// TestParitySeek: File.Seek's errors are os.File's: a bad whence is
// *fs.PathError{seek, name, EINVAL}, a closed file's is fs.ErrClosed.
func TestParitySeek(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	seekErrs := func(f interface {
		Seek(int64, int) (int64, error)
		Close() error
	}) (bad, neg, closed, closedBad string) {
		shape := func(_ int64, err error) string {
			var pe *fs.PathError
			if !errors.As(err, &pe) {
				return fmt.Sprintf("%T %v", err, err)
			}
			return fmt.Sprintf("%T{Op:%s Path:%s Err:%T %v} EINVAL:%v", err, pe.Op, pe.Path, pe.Err, pe.Err, errors.Is(err, syscall.EINVAL))
		}
		bad, neg = shape(f.Seek(0, 7)), shape(f.Seek(-1, io.SeekStart))
		f.Close()
		return bad, neg, shape(f.Seek(0, io.SeekStart)), shape(f.Seek(0, 7))
	}
	forEachBackend(t, func(t *testing.T, e *Executor) {
		f, err := e.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		of, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		gb, gn, gc, gcb := seekErrs(f)
		wb, wn, wc, wcb := seekErrs(of)
		for _, c := range []struct{ what, got, want string }{
			{"bad whence", gb, wb}, {"negative offset", gn, wn}, {"closed", gc, wc}, {"closed, bad whence", gcb, wcb},
		} {
			if c.got != c.want {
				t.Errorf("%s:\n got %s\nwant %s", c.what, c.got, c.want)
			}
		}
		if !strings.Contains(wb, "EINVAL:true") {
			t.Errorf("os's bad whence: %s, want EINVAL", wb)
		}
	})
}

// TestParityEntries: WithEntries out of 1..ring.MaxEntries fails at New with
// an error naming the value and the range, on both backends.
func TestParityEntries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		backend := WithStrict()
		if e.Backend() == BackendGo {
			backend = withGoBackend()
		}
		for _, n := range []uint32{0, ring.MaxEntries + 1, 1 << 31, ^uint32(0)} {
			e2, err := New(backend, WithLoops(1), WithEntries(n))
			if err == nil {
				e2.Close()
				t.Errorf("WithEntries(%d): no error", n)
				continue
			}
			want := fmt.Sprintf("executor: WithEntries(%d): out of range 1..%d", n, ring.MaxEntries)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("WithEntries(%d): %v, want %q", n, err, want)
			}
		}
		for _, n := range []uint32{1, ring.MaxEntries} {
			e2, err := New(backend, WithLoops(1), WithEntries(n))
			if err != nil {
				t.Errorf("WithEntries(%d): %v", n, err)
				continue
			}
			e2.Close()
		}
	})
}

// TestNetOptionsRefusedWhereTheyDoNotApply: a NetOption given to a call it
// does not apply to, or a nil one, is refused by that call, on both
// backends, with an error naming the option and the call.
func TestNetOptionsRefusedWhereTheyDoNotApply(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		accept := func(netip.AddrPort) Verdict { return Accept }
		acceptPacket := func(netip.AddrPort, []byte) Verdict { return Accept }
		ctx := context.Background()
		for _, tc := range []struct {
			call string
			run  func() error
			want string
		}{
			{"Dial", func() error {
				_, err := e.Dial(ctx, "tcp", "127.0.0.1:1", WithFilter(accept))
				return err
			}, "WithFilter is not an option of Dial"},
			{"Dial", func() error {
				_, err := e.Dial(ctx, "tcp", "127.0.0.1:1", WithReusePort())
				return err
			}, "WithReusePort is not an option of Dial"},
			{"Listen", func() error {
				_, err := e.Listen("tcp", "127.0.0.1:0", WithPacketFilter(acceptPacket))
				return err
			}, "WithPacketFilter is not an option of Listen"},
			{"ListenPacket", func() error {
				_, err := e.ListenPacket("udp", "127.0.0.1:0", WithFilter(accept))
				return err
			}, "WithFilter is not an option of ListenPacket"},
			{"ListenPacket", func() error {
				_, err := e.ListenPacket("udp", "127.0.0.1:0", WithKeepAlive(net.KeepAliveConfig{}))
				return err
			}, "WithKeepAlive is not an option of ListenPacket"},
			{"Listen", func() error {
				_, err := e.Listen("tcp", "127.0.0.1:0", nil)
				return err
			}, "nil NetOption"},
		} {
			err := tc.run()
			var oe *net.OpError
			if err == nil || !errors.As(err, &oe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want a *net.OpError saying %q", tc.call, err, tc.want)
			}
		}
		// The options that apply are taken.
		ln, err := e.Listen("tcp", "127.0.0.1:0", WithFilter(accept), WithReusePort(), WithKeepAlive(net.KeepAliveConfig{Enable: true}))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := e.Dial(ctx, "tcp", ln.Addr().String(), WithKeepAlive(net.KeepAliveConfig{Enable: true}))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		pc, err := e.ListenPacket("udp", "127.0.0.1:0", WithPacketFilter(acceptPacket), WithReusePort())
		if err != nil {
			t.Fatal(err)
		}
		pc.Close()
	})
}
