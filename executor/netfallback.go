package executor

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
)

// The Go backend (io_uring refused): Listen, Dial and ListenPacket return
// Go's own net types, with the filters and the namespace still applied,
// wrapped so that the executor's Close closes them (goclose.go).

func (e *Executor) goListen(network, address string, cfg *netConfig) (net.Listener, error) {
	if e.isClosing() {
		return nil, listenError(network, address, errExecutorClosed{})
	}
	lc := net.ListenConfig{Control: reusePortControl(cfg.reusePort || cfg.sharePort), KeepAliveConfig: goKeepAlive(cfg.keepAlive)}
	var ln net.Listener
	err := inNamespace(cfg.namespace, func() (err error) {
		if address, err = goProbe(network, address, false, cfg); err != nil {
			return err
		}
		ln, err = lc.Listen(context.Background(), network, address)
		return err
	})
	if err != nil {
		return nil, err
	}
	if cfg.filter != nil {
		ln = &goFilteredListener{Listener: ln, filter: cfg.filter}
	}
	gl := &goListener{inner: ln, e: e}
	if err := e.track(gl); err != nil {
		ln.Close()
		return nil, listenError(network, address, errExecutorClosed{})
	}
	return gl, nil
}

func (e *Executor) goDial(ctx context.Context, network, address string, cfg *netConfig) (net.Conn, error) {
	closedErr := &net.OpError{Op: "dial", Net: network, Addr: stringAddr{network, address}, Err: errExecutorClosed{}}
	if e.isClosing() {
		return nil, closedErr
	}
	d := net.Dialer{KeepAliveConfig: goKeepAlive(cfg.keepAlive)}
	var c net.Conn
	err := inNamespace(cfg.namespace, func() (err error) {
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, err
	}
	if u, ok := c.(*net.UDPConn); ok {
		pc := newGoPacketConn(e, u)
		if err := e.track(pc); err != nil {
			c.Close()
			return nil, closedErr
		}
		return goUDPConn{pc}, nil
	}
	w, err := e.goWrapConn(c)
	if err != nil {
		return nil, closedErr
	}
	return w, nil
}

func (e *Executor) goListenPacket(network, address string, cfg *netConfig) (net.PacketConn, error) {
	if cfg.filter != nil {
		return nil, listenError(network, address, errors.New("WithFilter is an option of Listen"))
	}
	if e.isClosing() {
		return nil, listenError(network, address, errExecutorClosed{})
	}
	lc := net.ListenConfig{Control: reusePortControl(cfg.reusePort || cfg.sharePort)}
	var pc net.PacketConn
	err := inNamespace(cfg.namespace, func() (err error) {
		if address, err = goProbe(network, address, true, cfg); err != nil {
			return err
		}
		pc, err = lc.ListenPacket(context.Background(), network, address)
		return err
	})
	if err != nil {
		return nil, err
	}
	if cfg.packetFilter != nil {
		pc = &goFilteredPacketConn{PacketConn: pc, filter: cfg.packetFilter}
	}
	gp := newGoPacketConn(e, pc)
	if err := e.track(gp); err != nil {
		pc.Close()
		return nil, listenError(network, address, errExecutorClosed{})
	}
	return gp, nil
}

// goProbe is bindSockets' probe (probeAddr) for the Go backend: with
// WithReusePort and not WithSharePort, a listener of Go's without
// SO_REUSEPORT first checks that no socket holds address, and the address
// it got (the port, for port 0) is returned for the real one. The same race
// remains between the probe's close and the real bind.
func goProbe(network, address string, packet bool, cfg *netConfig) (string, error) {
	if !cfg.reusePort || cfg.sharePort || strings.HasPrefix(network, "unix") {
		return address, nil
	}
	var probe io.Closer
	var addr net.Addr
	if packet {
		pc, err := net.ListenPacket(network, address)
		if err != nil {
			return "", err
		}
		probe, addr = pc, pc.LocalAddr()
	} else {
		ln, err := net.Listen(network, address)
		if err != nil {
			return "", err
		}
		probe, addr = ln, ln.Addr()
	}
	probe.Close()
	return addr.String(), nil
}
