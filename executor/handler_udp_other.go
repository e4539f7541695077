//go:build !linux

package executor

// ServePacket off Linux: the Go backend only.

type pring struct{}

type psend struct{}

func (p *ploop) initSend(*preply) {}

func (p *ploop) wakeStop() {}

func (e *Executor) servePacketRing(network, address string, h PacketHandler, cfg serveConfig) (*PacketServer, error) {
	return e.servePacketGo(network, address, h, cfg, errNotLinux.Error())
}
