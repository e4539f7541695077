//go:build !linux

package executor

import "net"

// Off Linux every Server is on the Go backend: the io_uring half of Dial
// and Adopt (handler_dial_linux.go) is never reached.

type dialRing struct{}

func (l *hloop) ringDial(c *HConn) error { return l.goDial(c) }

func (l *hloop) ringAdopt(c *HConn, nc net.Conn) error {
	nc.Close()
	return errNotLinux
}

func (l *hloop) ringConnect(c *HConn)        { l.dialFailed(c, errNotLinux) }
func (l *hloop) stopDials()                  {}
func (l *hloop) openConn(c *HConn, fd int32) {}
