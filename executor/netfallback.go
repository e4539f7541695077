package executor

import (
	"context"
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// The Go backend (io_uring refused): Listen, Dial and ListenPacket return
// Go's own net types, with the filters and the namespace still applied.

func goListen(network, address string, cfg *listenConfig) (net.Listener, error) {
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
		return &goFilteredListener{Listener: ln, filter: cfg.filter}, nil
	}
	return ln, nil
}

func goDial(ctx context.Context, network, address string, cfg *dialConfig) (net.Conn, error) {
	d := net.Dialer{KeepAliveConfig: goKeepAlive(cfg.keepAlive)}
	var c net.Conn
	err := inNamespace(cfg.namespace, func() (err error) {
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

func goListenPacket(network, address string, cfg *listenConfig) (net.PacketConn, error) {
	if cfg.filter != nil {
		return nil, listenError(network, address, errors.New("WithFilter is an option of Listen"))
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
		return &goFilteredPacketConn{PacketConn: pc, filter: cfg.packetFilter}, nil
	}
	return pc, nil
}

// reusePortControl sets SO_REUSEPORT on a socket Go's net makes, if asked.
func reusePortControl(on bool) func(network, address string, c syscall.RawConn) error {
	if !on {
		return nil
	}
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}
}
