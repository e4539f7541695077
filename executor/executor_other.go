//go:build !linux

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
	"syscall"
	"time"
)

// The executor off Linux: io_uring is Linux-only, so New returns the Go
// backend, and every entry point runs on Go's net, os and time with the API
// it has on Linux. The types only io_uring makes (Conn, Listener,
// PacketConn, UDPConn) exist so that code naming them compiles everywhere;
// no call returns one here, so their methods are never reached.

// errNotLinux is why an Executor off Linux is on the Go backend.
var errNotLinux = errors.New("io_uring is Linux-only")

type ringConfig struct{}

const maxEntries = 32768 // IORING_MAX_ENTRIES, so WithEntries checks alike everywhere

// startRings is New's io_uring half: off Linux, the Go backend, or with
// WithStrict the error.
func (e *Executor) startRings(c config) (*Executor, error) {
	if c.strict {
		return nil, fmt.Errorf("executor: %w (WithStrict)", errNotLinux)
	}
	c.logger.Debug("kasync: on the Go backend", "cause", errNotLinux.Error())
	return newGoBackend(c.logger, errNotLinux.Error()), nil
}

// loop is an io_uring loop; none exists off Linux.
type loop struct{}

func (*loop) beginClose()       {}
func (*loop) closeFDs()         {}
func (*loop) finish() error     { return nil }
func (*loop) addStats(s *Stats) {}

// op is an io_uring operation; HConn's fields name it.
type op struct{}

// hring is an io_uring Server loop's own state; none here.
type hring struct{}

func wakeFD(int)                            {}
func closeFD(int)                           {}
func (*hloop) inFlight() int                { return 0 }
func (*hloop) publishRing()                 {}
func (*hloop) newConn(int32, bool)          {}
func sockName(int32, string, bool) net.Addr { return nil }

func (e *Executor) serveRing(network, address string, h Handler, cfg serveConfig) (*Server, error) {
	return nil, listenError(network, address, errNotLinux)
}

// inNamespace runs f; network namespaces are Linux's.
func inNamespace(path string, f func() error) error {
	if path != "" {
		return fmt.Errorf("WithNamespace(%q): network namespaces are Linux-only", path)
	}
	return f()
}

// reusePortControl: SO_REUSEPORT is set on Linux only.
func reusePortControl(on bool) func(network, address string, c syscall.RawConn) error {
	if !on {
		return nil
	}
	return func(string, string, syscall.RawConn) error {
		return errors.New("WithReusePort is Linux-only")
	}
}

// Listen listens on address, like net.Listen (see the Linux documentation;
// off Linux it is net.Listen's listener, wrapped to apply WithFilter).
func (e *Executor) Listen(network, address string, opts ...NetOption) (net.Listener, error) {
	cfg, err := listenOptions(network, address, false, opts)
	if err != nil {
		return nil, err
	}
	return e.goListen(network, address, &cfg)
}

// Dial connects to address, like net.Dialer.DialContext.
func (e *Executor) Dial(ctx context.Context, network, address string, opts ...NetOption) (net.Conn, error) {
	cfg, err := netOptions(callDial, opts)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	return e.goDial(ctx, network, address, &cfg)
}

// ListenPacket opens a UDP socket bound to address, like net.ListenPacket.
func (e *Executor) ListenPacket(network, address string, opts ...NetOption) (net.PacketConn, error) {
	cfg, err := listenOptions(network, address, true, opts)
	if err != nil {
		return nil, err
	}
	return e.goListenPacket(network, address, &cfg)
}

// Sleep waits for d; it returns the context's cause if ctx is done first,
// or ErrClosed if the executor closes.
func (e *Executor) Sleep(ctx context.Context, d time.Duration) error {
	return sleepGo(ctx, d, e.closing)
}

// Conn is a TCP or Unix connection on io_uring (Linux only: none is made
// here).
type Conn struct{ _ [0]func() }

func (c *Conn) Read(p []byte) (int, error)            { return 0, errNotLinux }
func (c *Conn) Write(p []byte) (int, error)           { return 0, errNotLinux }
func (c *Conn) Close() error                          { return errNotLinux }
func (c *Conn) CloseWrite() error                     { return errNotLinux }
func (c *Conn) CloseRead() error                      { return errNotLinux }
func (c *Conn) LocalAddr() net.Addr                   { return nil }
func (c *Conn) RemoteAddr() net.Addr                  { return nil }
func (c *Conn) LocalAddrPort() netip.AddrPort         { return netip.AddrPort{} }
func (c *Conn) RemoteAddrPort() netip.AddrPort        { return netip.AddrPort{} }
func (c *Conn) SetDeadline(t time.Time) error         { return errNotLinux }
func (c *Conn) SetReadDeadline(t time.Time) error     { return errNotLinux }
func (c *Conn) SetWriteDeadline(t time.Time) error    { return errNotLinux }
func (c *Conn) ReadFrom(r io.Reader) (int64, error)   { return 0, errNotLinux }
func (c *Conn) WriteTo(w io.Writer) (int64, error)    { return 0, errNotLinux }
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return nil, errNotLinux }

// Listener is a listening socket on io_uring (Linux only).
type Listener struct{ _ [0]func() }

func (ln *Listener) Accept() (net.Conn, error)     { return nil, errNotLinux }
func (ln *Listener) Close() error                  { return errNotLinux }
func (ln *Listener) SetDeadline(t time.Time) error { return errNotLinux }
func (ln *Listener) Addr() net.Addr                { return nil }
func (ln *Listener) Dropped() uint64               { return 0 }

// PacketConn is a UDP socket on io_uring (Linux only).
type PacketConn struct{ _ [0]func() }

func (pc *PacketConn) ReadFrom(p []byte) (int, net.Addr, error) { return 0, nil, errNotLinux }
func (pc *PacketConn) ReadFromUDPAddrPort(p []byte) (int, netip.AddrPort, error) {
	return 0, netip.AddrPort{}, errNotLinux
}
func (pc *PacketConn) WriteTo(p []byte, addr net.Addr) (int, error) { return 0, errNotLinux }
func (pc *PacketConn) WriteToUDPAddrPort(p []byte, to netip.AddrPort) (int, error) {
	return 0, errNotLinux
}
func (pc *PacketConn) Close() error                          { return errNotLinux }
func (pc *PacketConn) LocalAddr() net.Addr                   { return nil }
func (pc *PacketConn) SetDeadline(t time.Time) error         { return errNotLinux }
func (pc *PacketConn) SetReadDeadline(t time.Time) error     { return errNotLinux }
func (pc *PacketConn) SetWriteDeadline(t time.Time) error    { return errNotLinux }
func (pc *PacketConn) Dropped() uint64                       { return 0 }
func (pc *PacketConn) SyscallConn() (syscall.RawConn, error) { return nil, errNotLinux }

// UDPConn is a connected UDP socket on io_uring (Linux only).
type UDPConn struct{ *PacketConn }

func (c *UDPConn) Read(p []byte) (int, error)  { return 0, errNotLinux }
func (c *UDPConn) Write(p []byte) (int, error) { return 0, errNotLinux }
func (c *UDPConn) RemoteAddr() net.Addr        { return nil }

// File is an open file; off Linux it wraps an *os.File (the Go backend),
// with the API it has on Linux.
type File struct {
	name       string
	osf        *os.File
	gof        *goFile
	appendMode bool
}

var errNegativeOff = errors.New("negative offset")

// Open opens name for reading, like os.Open.
func (e *Executor) Open(name string) (*File, error) { return e.OpenFile(name, os.O_RDONLY, 0) }

// Create creates or truncates name, like os.Create.
func (e *Executor) Create(name string) (*File, error) {
	return e.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// OpenFile opens name like os.OpenFile.
func (e *Executor) OpenFile(name string, flag int, perm os.FileMode) (*File, error) {
	return e.openOS(name, flag, perm)
}

// NewFile returns a File for the open descriptor fd, like os.NewFile.
func (e *Executor) NewFile(fd uintptr, name string) *File {
	return e.newFileGo(os.NewFile(fd, name), 0)
}

func (e *Executor) newFileGo(osf *os.File, flag int) *File {
	g := &goFile{osf: osf, e: e}
	if err := e.track(g); err != nil {
		g.closeByExecutor()
	}
	return &File{name: osf.Name(), osf: osf, gof: g, appendMode: flag&os.O_APPEND != 0}
}

func (f *File) Name() string { return f.name }
func (f *File) Fd() uintptr  { return f.osf.Fd() }
func (f *File) Close() error { return f.gof.closeByOwner() }

func (f *File) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.osf.ReadAt(p, off)
	return n, f.gof.fileErr(err)
}

func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	return f.ReadAt(p, off)
}

func (f *File) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.osf.WriteAt(p, off)
	return n, f.gof.fileErr(err)
}

func (f *File) WriteAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	return f.WriteAt(p, off)
}

func (f *File) Read(p []byte) (int, error) {
	n, err := f.osf.Read(p)
	return n, f.gof.fileErr(err)
}

func (f *File) Write(p []byte) (int, error) {
	n, err := f.osf.Write(p)
	return n, f.gof.fileErr(err)
}

func (f *File) Seek(offset int64, whence int) (int64, error) {
	pos, err := f.osf.Seek(offset, whence)
	return pos, f.gof.fileErr(err)
}

func (f *File) ReadAtFixed(b FixedBuffer, off int64) (int, error)  { return f.ReadAt(b.b, off) }
func (f *File) WriteAtFixed(b FixedBuffer, off int64) (int, error) { return f.WriteAt(b.b, off) }

func (f *File) ReadBatch(reqs []ReadRequest) error {
	return f.ReadBatchContext(context.Background(), reqs)
}

func (f *File) ReadBatchContext(ctx context.Context, reqs []ReadRequest) error {
	var first error
	for i := range reqs {
		r := &reqs[i]
		r.N, r.Err = f.ReadAt(r.Buf, r.Off)
		if first == nil && r.Err != nil && r.Err != io.EOF {
			first = r.Err
		}
	}
	return first
}

func (f *File) WriteBatch(reqs []WriteRequest) error {
	return f.WriteBatchContext(context.Background(), reqs)
}

func (f *File) WriteBatchContext(ctx context.Context, reqs []WriteRequest) error {
	var first error
	for i := range reqs {
		r := &reqs[i]
		r.N, r.Err = f.WriteAt(r.Buf, r.Off)
		if first == nil && r.Err != nil {
			first = r.Err
		}
	}
	return first
}

func (f *File) Sync() error                  { return f.gof.fileErr(f.osf.Sync()) }
func (f *File) Datasync() error              { return f.gof.fileErr(f.osf.Sync()) }
func (f *File) Truncate(size int64) error    { return f.gof.fileErr(f.osf.Truncate(size)) }
func (f *File) Chmod(mode os.FileMode) error { return f.gof.fileErr(f.osf.Chmod(mode)) }
func (f *File) Stat() (fs.FileInfo, error)   { return f.osf.Stat() }

// Fallocate is Linux's fallocate(2); off Linux it fails.
func (f *File) Fallocate(mode uint32, off, length int64) error {
	return &fs.PathError{Op: "fallocate", Path: f.name, Err: errors.ErrUnsupported}
}

// CopyFile copies src to dst from their positions, like io.Copy.
func (e *Executor) CopyFile(dst, src *File) (int64, error) {
	return e.CopyFileProgress(dst, src, nil)
}

// CopyFileProgress is CopyFile that calls progress after each chunk.
func (e *Executor) CopyFileProgress(dst, src *File, progress func(copied int64)) (int64, error) {
	if progress == nil {
		return io.Copy(dst.osf, src.osf)
	}
	var n int64
	buf := make([]byte, 1<<20)
	var err error
	for {
		var m int
		m, err = src.Read(buf)
		if m > 0 {
			w, werr := dst.Write(buf[:m])
			n += int64(w)
			if werr != nil {
				err = werr
				break
			}
			progress(n)
		}
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			break
		}
	}
	progress(n)
	return n, err
}

// RegisterBuffers allocates n aligned buffers of size bytes; off Linux
// there is no ring to register them with, and ReadAtFixed is ReadAt.
func (e *Executor) RegisterBuffers(n, size int) ([]FixedBuffer, error) {
	if n <= 0 || n > 1<<14 || size <= 0 || size > 1<<30 {
		return nil, fmt.Errorf("executor: RegisterBuffers(%d, %d): %w", n, size, syscall.EINVAL)
	}
	if e.isClosing() {
		return nil, fmt.Errorf("executor: RegisterBuffers: %w", ErrClosed)
	}
	stride := (size + DirectAlign - 1) / DirectAlign * DirectAlign
	mem := AlignedBuffer(n * stride)
	bufs := make([]FixedBuffer, n)
	for i := range bufs {
		bufs[i] = FixedBuffer{b: mem[i*stride : i*stride+size : i*stride+size], index: uint16(i)}
	}
	return bufs, nil
}

// UnregisterBuffers does nothing off Linux.
func (e *Executor) UnregisterBuffers() error { return nil }

// memlockedNow: no rings, nothing locked.
func memlockedNow() int64 { return 0 }
