//go:build linux

package executor

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// setKeepAlive applies cfg (nil: the default) to a TCP socket. Like Go's
// net, it ignores errors: the connection works without probes.
func setKeepAlive(fd int, cfg *net.KeepAliveConfig) {
	if cfg == nil {
		cfg = &defaultKeepAlive
	}
	if !cfg.Enable {
		return
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	secs := func(d time.Duration) int {
		if d == 0 {
			d = 15 * time.Second
		}
		return int((d + time.Second - 1) / time.Second)
	}
	if cfg.Idle >= 0 {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs(cfg.Idle))
	}
	if cfg.Interval >= 0 {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs(cfg.Interval))
	}
	if cfg.Count >= 0 {
		count := cfg.Count
		if count == 0 {
			count = 9
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, count)
	}
}
