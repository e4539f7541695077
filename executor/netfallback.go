package executor

import (
	"context"
	"errors"
	"net"
)

// The Go backend (io_uring refused): Listen, Dial and ListenPacket return
// Go's own net types, with the filters and the namespace still applied,
// wrapped so that the executor's Close closes them (goclose.go).

func (e *Executor) goListen(network, address string, cfg *netConfig) (net.Listener, error) {
	if e.isClosing() {
		return nil, listenError(network, address, errExecutorClosed{})
	}
	lc := net.ListenConfig{Control: reusePortControl(cfg.reusePort), KeepAliveConfig: goKeepAlive(cfg.keepAlive)}
	var ln net.Listener
	err := inNamespace(cfg.namespace, func() (err error) {
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
	lc := net.ListenConfig{Control: reusePortControl(cfg.reusePort)}
	var pc net.PacketConn
	err := inNamespace(cfg.namespace, func() (err error) {
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
