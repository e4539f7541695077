package executor

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// NetOption configures Listen, ListenPacket and Dial. Like Option (New)
// and ServeOption (Serve), it is a function applied to the call's
// configuration: options compose, are checked at the call, and their zero
// is the default. One type serves the three calls because most options
// apply to more than one of them; an option given to a call it does not
// apply to (WithFilter to Dial, say) is refused by that call with an error
// that names both.
type NetOption func(*netConfig)

type netConfig struct {
	filter       func(remote netip.AddrPort) Verdict
	packetFilter func(from netip.AddrPort, b []byte) Verdict
	reusePort    bool
	sharePort    bool
	namespace    string
	keepAlive    *net.KeepAliveConfig // nil: the default
	given        netOpt               // which options were given
}

// netOpt names one NetOption, for the check of where it applies.
type netOpt uint8

const (
	optFilter netOpt = 1 << iota
	optPacketFilter
	optReusePort
	optNamespace
	optKeepAlive
	optSharePort
)

var netOptNames = map[netOpt]string{
	optFilter: "WithFilter", optPacketFilter: "WithPacketFilter", optReusePort: "WithReusePort",
	optNamespace: "WithNamespace", optKeepAlive: "WithKeepAlive", optSharePort: "WithSharePort",
}

// The calls NetOptions go to, and the options each takes.
const (
	callListen       = "Listen"
	callListenPacket = "ListenPacket"
	callDial         = "Dial"
)

var netOptsOf = map[string]netOpt{
	callListen:       optFilter | optReusePort | optSharePort | optNamespace | optKeepAlive,
	callListenPacket: optPacketFilter | optReusePort | optSharePort | optNamespace,
	callDial:         optNamespace | optKeepAlive,
}

// netOptions applies opts for call and refuses a nil option or one that
// does not apply to call.
func netOptions(call string, opts []NetOption) (netConfig, error) {
	var cfg netConfig
	for _, o := range opts {
		if o == nil {
			return cfg, errors.New("executor: nil NetOption")
		}
		o(&cfg)
	}
	if bad := cfg.given &^ netOptsOf[call]; bad != 0 {
		for o := optFilter; o <= optKeepAlive; o <<= 1 {
			if bad&o != 0 {
				return cfg, fmt.Errorf("executor: %s is not an option of %s", netOptNames[o], call)
			}
		}
	}
	return cfg, nil
}

// WithFilter runs f on the remote address of every connection a listener
// accepts, before Accept returns it: a connection f drops is closed at once
// and counted (Listener.Dropped, Stats.FilterDropped). f runs in the
// goroutine that calls Accept. Unix-socket peers have no address: f gets the
// zero AddrPort. IPv4 peers of a dual-stack listener come as IPv4 addresses.
// An option of Listen.
func WithFilter(f func(remote netip.AddrPort) Verdict) NetOption {
	return func(c *netConfig) { c.filter, c.given = f, c.given|optFilter }
}

// WithPacketFilter runs f on every datagram a PacketConn receives, before
// ReadFrom returns it: a datagram f drops is discarded and counted
// (PacketConn.Dropped, Stats.FilterDropped). b is valid only during the call.
// An option of ListenPacket.
func WithPacketFilter(f func(from netip.AddrPort, b []byte) Verdict) NetOption {
	return func(c *netConfig) { c.packetFilter, c.given = f, c.given|optPacketFilter }
}

// WithReusePort makes a TCP listener open one socket per loop, all bound to
// the same address with SO_REUSEPORT, each accepting on its own loop; the
// kernel spreads incoming connections over them. Accept returns connections
// from all of them. For ListenPacket it sets SO_REUSEPORT on the socket. An
// option of Listen and ListenPacket.
//
// The address must still be free, as for net.Listen: if a socket holds it
// (another server, even one with SO_REUSEPORT), the call fails with
// EADDRINUSE rather than join it. Sharing the address with sockets already
// bound to it takes WithSharePort.
func WithReusePort() NetOption {
	return func(c *netConfig) { c.reusePort, c.given = true, c.given|optReusePort }
}

// WithSharePort makes a listener's or packet conn's sockets join the
// SO_REUSEPORT sockets of the same user already bound to the address, in
// this process or another (a second copy of a server, a zero-downtime
// restart): the kernel then spreads connections or datagrams over all of
// them. Without it, a port in use fails with EADDRINUSE. With WithReusePort,
// one socket per loop; else one. An option of Listen and ListenPacket.
func WithSharePort() NetOption {
	return func(c *netConfig) { c.sharePort, c.given = true, c.given|optSharePort }
}

// WithNamespace creates the socket of a Listen, ListenPacket or Dial inside
// the network namespace at path (such as /var/run/netns/NAME, made by
// `ip netns add NAME`) instead of the process's own (kasync's
// net::Namespace). Only the socket's creation happens there; it then works
// from any thread. Entering a namespace needs CAP_SYS_ADMIN.
func WithNamespace(path string) NetOption {
	return func(c *netConfig) { c.namespace, c.given = path, c.given|optNamespace }
}

// WithKeepAlive sets the keep-alive probes of the TCP connections a Listener
// accepts or Dial makes, with net.KeepAliveConfig's meaning: Enable turns
// them on; a zero Idle, Interval or Count takes Go's default (15 s, 15 s,
// 9), a negative one leaves the system's. Without this option they are on
// with Go's defaults, as with Go's net, so that a peer that vanished
// without a FIN is noticed. The event-driven Serve leaves them off. An
// option of Listen and Dial.
func WithKeepAlive(cfg net.KeepAliveConfig) NetOption {
	return func(c *netConfig) { c.keepAlive, c.given = &cfg, c.given|optKeepAlive }
}
