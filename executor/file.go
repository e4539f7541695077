//go:build linux

package executor

import (
	"context"
	"io/fs"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// File is an open file whose I/O runs on the executor's io_uring rings, with
// the API of *os.File: it is an io.Reader, io.Writer, io.ReaderAt,
// io.WriterAt, io.Seeker and io.Closer, and its errors are *fs.PathError.
//
// Every operation goes through the loop the file was bound to at Open (one
// ring per loop). ReadAt, WriteAt, the batches and Stat may run from many
// goroutines at once; Read, Write and Seek share the file position and are
// serialized, as with *os.File. Close cancels operations in flight (they
// return errors wrapping fs.ErrClosed) and closes the descriptor once the last
// of them has completed.
//
// On an Executor whose Backend is BackendGo, a File wraps an *os.File.
type File struct {
	name string
	sfd  *sysFD   // io_uring backend
	osf  *os.File // Go backend (fallback)
	gof  *goFile  // Go backend: osf, as the executor tracks it

	posMu sync.Mutex // serializes Read, Write and Seek (its closed state is sfd's)

	appendMode bool
	direct     bool        // opened with O_DIRECT
	noCached   atomic.Bool // readCached does not work on this file
	memAlign   int         // O_DIRECT: buffer address alignment
	offAlign   int         // O_DIRECT: offset and length alignment
}

// maxRW caps one read or write: the kernel moves at most about 2 GiB per call.
const maxRW = 1 << 30

// Open opens name for reading, like os.Open.
func (e *Executor) Open(name string) (*File, error) {
	return e.OpenFile(name, os.O_RDONLY, 0)
}

// Create creates or truncates name for reading and writing (mode 0666 before
// umask), like os.Create.
func (e *Executor) Create(name string) (*File, error) {
	return e.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// OpenFile opens name with flag (os.O_RDONLY, os.O_CREATE, unix.O_DIRECT,
// ...) and, if it creates the file, perm, like os.OpenFile; the open itself is
// an io_uring OPENAT. O_CLOEXEC is always added.
func (e *Executor) OpenFile(name string, flag int, perm os.FileMode) (*File, error) {
	l := e.loop()
	if l == nil {
		return e.openGo(name, flag, perm)
	}
	path, err := unix.BytePtrFromString(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EINVAL}
	}
	var fd int
	for {
		// path is on the heap (BytePtrFromString allocates it) and read
		// at submission, which happens before do returns.
		fd, err = l.do(context.Background(), func(s *ring.SQE, _ *op) {
			s.PrepOpenat(unix.AT_FDCWD, path, flag|unix.O_CLOEXEC, sysMode(perm))
		})
		if err != syscall.EINTR {
			break
		}
	}
	runtime.KeepAlive(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	f := newFile(l, fd, name, flag)
	if f.direct {
		f.learnDirectAlign()
	}
	return f, nil
}

// NewFile returns a File for the open descriptor fd, which it takes over
// (Close closes it), like os.NewFile; e.g. NewFile(0, "/dev/stdin").
func (e *Executor) NewFile(fd uintptr, name string) *File {
	flag, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
	if err != nil {
		flag = 0
	}
	var f *File
	if l := e.loop(); l != nil {
		f = newFile(l, int(fd), name, flag)
	} else {
		f = e.newFileGo(newGoFD(fd, name), flag)
	}
	if f.direct {
		f.learnDirectAlign()
	}
	return f
}

func newFile(l *loop, fd int, name string, flag int) *File {
	f := &File{
		name:       name,
		sfd:        newSysFD(l, fd),
		appendMode: flag&os.O_APPEND != 0,
		direct:     flag&unix.O_DIRECT != 0,
	}
	// Like an *os.File, a File that is dropped unclosed closes its descriptor.
	runtime.AddCleanup(f, func(s *sysFD) { s.Close() }, f.sfd)
	return f
}

// sysMode turns an fs.FileMode into the mode bits of open(2).
func sysMode(m os.FileMode) uint32 {
	o := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		o |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		o |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		o |= unix.S_ISVTX
	}
	return o
}

// Name returns the name the file was opened with.
func (f *File) Name() string { return f.name }

// Fd returns the file's descriptor, or ^uintptr(0) once it is closed. Unlike
// os.File.Fd it leaves the descriptor's blocking mode alone.
func (f *File) Fd() uintptr {
	if f.osf != nil {
		return f.osf.Fd()
	}
	if f.sfd.closedByOwner() {
		return ^uintptr(0)
	}
	return uintptr(f.sfd.fd)
}

func (f *File) pathErr(op string, err error) error {
	return &fs.PathError{Op: op, Path: f.name, Err: err}
}

// run is the one way a File's operation goes to the kernel: loop.run holds
// a reference on the descriptor, starts the op (with a LINK_TIMEOUT if ctx
// has a deadline), waits for its terminal CQE (cut short by ctx, Close of
// the file, or Close of the executor, each of which cancels it and still
// waits), and names a cancellation's cause; run wraps the error in an
// *fs.PathError. prep gets the descriptor to put in the SQE.
func (f *File) run(ctx context.Context, name string, prep func(s *ring.SQE, fd int)) (int, error) {
	s := f.sfd
	n, err := s.l.run(ctx, s, nil, func(sqe *ring.SQE, _ *op) { prep(sqe, s.fd) })
	if err != nil {
		return 0, f.pathErr(name, fileErr(err))
	}
	return n, nil
}

// Close cancels the file's operations in flight, which return errors
// wrapping fs.ErrClosed, and returns once the descriptor is closed (after the
// last of them completed). A second Close returns an error wrapping
// fs.ErrClosed.
func (f *File) Close() error {
	if f == nil {
		return os.ErrInvalid
	}
	if f.osf != nil {
		return f.gof.closeByOwner()
	}
	if !f.sfd.Close() { // cancels the operations in flight

		return f.pathErr("close", os.ErrClosed)
	}
	<-f.sfd.closed
	return nil
}
