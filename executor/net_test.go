//go:build linux

package executor

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"golang.org/x/net/nettest"
)

// kasyncPipe makes a MakePipe for nettest.TestConn: both ends are *Conn of
// one executor, over a listener on network/address.
func kasyncPipe(t *testing.T, e *Executor, network, address string) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		ln, err := e.Listen(network, address)
		if err != nil {
			return nil, nil, nil, err
		}
		accepted := make(chan net.Conn, 1)
		acceptErr := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}()
		c1, err = e.Dial(context.Background(), ln.Addr().Network(), ln.Addr().String())
		if err != nil {
			ln.Close()
			return nil, nil, nil, err
		}
		select {
		case c2 = <-accepted:
		case err = <-acceptErr:
			c1.Close()
			ln.Close()
			return nil, nil, nil, err
		}
		stop = func() {
			c1.Close()
			c2.Close()
			ln.Close()
		}
		return c1, c2, stop, nil
	}
}

// TestNetConn runs x/net/nettest's conformance tests of net.Conn over TCP
// on IPv4 and IPv6 and over Unix sockets, on both backends.
func TestNetConn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		t.Run("tcp4", func(t *testing.T) { nettest.TestConn(t, kasyncPipe(t, e, "tcp", "127.0.0.1:0")) })
		t.Run("tcp6", func(t *testing.T) {
			if !hasLoopback6() {
				t.Skip("no ::1 here")
			}
			nettest.TestConn(t, kasyncPipe(t, e, "tcp6", "[::1]:0"))
		})
		t.Run("unix", func(t *testing.T) {
			nettest.TestConn(t, kasyncPipe(t, e, "unix", filepath.Join(t.TempDir(), "s")))
		})
	})
}

func hasLoopback6() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
