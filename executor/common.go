package executor

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime/pprof"
	"strconv"
)

// Helpers both backends use, on every GOOS.

// listenOptions is the opening Listen (packet false) and ListenPacket
// share: the options, and the checks made before the backend is chosen.
func listenOptions(network, address string, packet bool, opts []NetOption) (netConfig, error) {
	call := callListen
	if packet {
		call = callListenPacket
	}
	cfg, err := netOptions(call, opts)
	if err != nil {
		return cfg, listenError(network, address, err)
	}
	if err := checkCall(network, packet); err != nil {
		return cfg, listenOpError(network, nil, err)
	}
	return cfg, nil
}

func listenError(network, address string, err error) error {
	return listenOpError(network, stringAddr{network, address}, err)
}

// listenOpError is a listen error as net makes it: no address if the
// network or address did not parse or resolve, else addr as resolved.
func listenOpError(network string, addr net.Addr, err error) error {
	return &net.OpError{Op: "listen", Net: network, Addr: addr, Err: netError(err)}
}

// stringAddr is a net.Addr for an address not resolved.
type stringAddr struct{ net, addr string }

func (e *Executor) isClosing() bool {
	select {
	case <-e.closing:
		return true
	default:
		return false
	}
}

func (a stringAddr) Network() string { return a.net }
func (a stringAddr) String() string  { return a.addr }

// netError maps the executor's internal errors to what net users test for.
func netError(err error) error {
	switch {
	case err == errClosedFD:
		return net.ErrClosed
	case errors.Is(err, ErrClosed):
		return errExecutorClosed{}
	}
	return err
}

// errExecutorClosed is the error of network calls cut short by the
// executor's Close: it is both net.ErrClosed and ErrClosed to errors.Is.
type errExecutorClosed struct{}

func (errExecutorClosed) Error() string { return "use of closed network connection (executor closed)" }

func (errExecutorClosed) Is(target error) bool { return target == net.ErrClosed || target == ErrClosed }

// wrongCallError is the error of Listen given a packet network, or of
// ListenPacket given a stream one: it names the call to use. It comes in
// a *net.OpError as net's UnknownNetworkError does.
type wrongCallError struct{ network, kind, use string }

// checkCall refuses a packet network for Listen (packet false) and a
// stream one for ListenPacket (packet true); other networks pass, to be
// parsed by the backend.
func checkCall(network string, packet bool) error {
	switch network {
	case "udp", "udp4", "udp6", "unixgram":
		if !packet {
			return wrongCallError{network, "packet", "ListenPacket"}
		}
	case "tcp", "tcp4", "tcp6", "unix", "unixpacket":
		if packet {
			return wrongCallError{network, "stream", "Listen"}
		}
	}
	return nil
}

// addrPortOf returns a net.Addr's IP and port, unmapped; zero for a
// non-IP address.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	case *net.UDPAddr:
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

var (
	// errCancelled: an op was cancelled, and no cause above applies.
	errCancelled = errors.New("operation cancelled")
	// errClosedFD is what an operation on a closed descriptor gets; the net
	// and file layers turn it into net.ErrClosed or os.ErrClosed.
	errClosedFD = errors.New("use of closed file descriptor")
	// errInterrupted: an op got EINTR without anyone asking to cancel it;
	// the caller issues it again, as os does.
	errInterrupted = errors.New("interrupted")
)

func (e wrongCallError) Error() string {
	return "unknown network " + e.network + " (a " + e.kind + " network): use " + e.use
}

// Timeout is false, as for net.UnknownNetworkError.
func (wrongCallError) Timeout() bool { return false }

// Temporary is false, as for net.UnknownNetworkError.
func (wrongCallError) Temporary() bool { return false }

// defaultKeepAlive is what a connection gets without WithKeepAlive.
var defaultKeepAlive = net.KeepAliveConfig{Enable: true}

// goKeepAlive is cfg for Go's net.ListenConfig and net.Dialer.
func goKeepAlive(cfg *net.KeepAliveConfig) net.KeepAliveConfig {
	if cfg == nil {
		return defaultKeepAlive
	}
	return *cfg
}

// logAddr is a network address for a log attribute ("" for nil).
func logAddr(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// labelLoop gives the calling goroutine the pprof labels of a loop, once at
// its start (no cost per turn): kasync.loop (its id) and kasync.kind
// (flusher or poller of an Executor's ring, serve or serve-go for a
// Server's loop), so that a CPU profile splits by loop
// (go tool pprof -tagfocus kasync.loop=3). A Server loop's goroutine keeps
// them on the OS thread it is locked to: labels belong to the goroutine.
func labelLoop(kind string, id int) {
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(),
		pprof.Labels("kasync.loop", strconv.Itoa(id), "kasync.kind", kind)))
}
