//go:build linux

package executor

import (
	"context"
	"errors"
	"io"
	"syscall"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// A File's reads, writes and seeks: positional (ReadAt, WriteAt, safe from
// many goroutines) and at the file position (Read, Write, Seek, serialized).

var (
	errWriteAtAppend = errors.New("executor: WriteAt on a file opened with O_APPEND")
	errNegativeOff   = errors.New("negative offset")
)

// ReadAt reads len(p) bytes at off, like os.File.ReadAt: it returns fewer
// only with an error, io.EOF at the end of the file. Safe from many
// goroutines at once.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	return f.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt that ctx can cut short (the read is cancelled; bytes
// already read are reported).
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (n int, err error) {
	if err := f.checkAt("readat", "read", p, off); err != nil {
		return 0, err
	}
	if f.osf != nil {
		n, err := f.osf.ReadAt(p, off)
		return n, f.gof.fileErr(err)
	}
	if ctx.Err() == nil {
		var eof bool
		n, eof = f.readCached(p, off)
		switch {
		case eof:
			return n, io.EOF
		case n == len(p):
			return n, nil
		}
		p = p[n:]
		off += int64(n)
	}
	m, err := f.readFull(ctx, p, off, func(s *ring.SQE, fd int, p []byte, off int64) { s.PrepRead(fd, p, off) })
	return n + m, err
}

// checkAt checks a positional call's offset and, with O_DIRECT, its
// buffer's and offset's alignment (dir: "read" or "write").
func (f *File) checkAt(name, dir string, p []byte, off int64) error {
	if off < 0 {
		return f.pathErr(name, errNegativeOff)
	}
	return f.checkDirect(dir, p, off)
}

// readFull fills p from off with reads that prep makes (one SQE for p's rest
// at off, at most maxRW bytes) until p is full, the file ends (io.EOF) or a
// read fails.
func (f *File) readFull(ctx context.Context, p []byte, off int64, prep func(s *ring.SQE, fd int, p []byte, off int64)) (n int, err error) {
	return f.full(ctx, "read", p, off, prep)
}

// WriteAt writes p at off, like os.File.WriteAt: all of it, or an error.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	return f.WriteAtContext(context.Background(), p, off)
}

// WriteAtContext is WriteAt that ctx can cut short.
func (f *File) WriteAtContext(ctx context.Context, p []byte, off int64) (n int, err error) {
	if f.appendMode {
		return 0, errWriteAtAppend
	}
	if err := f.checkAt("writeat", "write", p, off); err != nil {
		return 0, err
	}
	if f.osf != nil {
		n, err := f.osf.WriteAt(p, off)
		return n, f.gof.fileErr(err)
	}
	return f.writeFull(ctx, p, off, func(s *ring.SQE, fd int, p []byte, off int64) { s.PrepWrite(fd, p, off) })
}

// writeFull writes all of p at off with writes that prep makes (one SQE for
// p's rest at off, at most maxRW bytes), or fails.
func (f *File) writeFull(ctx context.Context, p []byte, off int64, prep func(s *ring.SQE, fd int, p []byte, off int64)) (n int, err error) {
	return f.full(ctx, "write", p, off, prep)
}

// full is readFull (name "read") and writeFull ("write"): it moves p's
// rest at off, at most maxRW bytes a call, until p is done or a call fails.
// A read that moves nothing is the end of the file (io.EOF), and so is a
// short O_DIRECT read (another would start at an unaligned offset); a
// write that moves nothing is io.ErrShortWrite.
func (f *File) full(ctx context.Context, name string, p []byte, off int64, prep func(s *ring.SQE, fd int, p []byte, off int64)) (n int, err error) {
	read := name == "read"
	for len(p) > 0 {
		want := min(len(p), maxRW)
		m, err := f.run(ctx, name, func(s *ring.SQE, fd int) { prep(s, fd, p[:want], off) })
		switch {
		case err != nil:
			return n, err
		case m == 0 && read:
			return n, io.EOF
		case m == 0:
			return n, f.pathErr(name, io.ErrShortWrite)
		}
		n += m
		p = p[m:]
		off += int64(m)
		if read && f.direct && m < want && len(p) > 0 {
			return n, io.EOF
		}
	}
	return n, nil
}

// Read reads up to len(p) bytes at the file position and advances it. At end
// of file it returns 0, io.EOF. Pipes, terminals and other streams work too.
func (f *File) Read(p []byte) (int, error) {
	if f.osf != nil {
		n, err := f.osf.Read(p)
		return n, f.gof.fileErr(err)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := f.checkDirect("read", p, 0); err != nil {
		return 0, err
	}
	f.posMu.Lock()
	defer f.posMu.Unlock()
	want := min(len(p), maxRW)
	for {
		n, err := f.run(context.Background(), "read", func(s *ring.SQE, fd int) { s.PrepRead(fd, p[:want], -1) })
		if errors.Is(err, syscall.EAGAIN) && f.pollWait(unix.POLLIN) == nil {
			continue // a descriptor in non-blocking mode: wait, then retry
		}
		if err == nil && n == 0 {
			return 0, io.EOF
		}
		return n, err
	}
}

// Write writes p at the file position (the end, with O_APPEND) and advances
// it; it writes all of p or returns an error.
func (f *File) Write(p []byte) (n int, err error) {
	if f.osf != nil {
		n, err := f.osf.Write(p)
		return n, f.gof.fileErr(err)
	}
	if err := f.checkDirect("write", p, 0); err != nil {
		return 0, err
	}
	f.posMu.Lock()
	defer f.posMu.Unlock()
	for len(p) > 0 {
		want := min(len(p), maxRW)
		m, err := f.run(context.Background(), "write", func(s *ring.SQE, fd int) { s.PrepWrite(fd, p[:want], -1) })
		if errors.Is(err, syscall.EAGAIN) && f.pollWait(unix.POLLOUT) == nil {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, f.pathErr("write", io.ErrShortWrite)
		}
		n += m
		p = p[m:]
	}
	return n, nil
}

// pollWait waits, with a POLL_ADD, until the descriptor is ready for events.
func (f *File) pollWait(events uint32) error {
	_, err := f.run(context.Background(), "poll", func(s *ring.SQE, fd int) { s.PrepPollAdd(fd, events) })
	return err
}

// Seek sets the position for the next Read or Write, like os.File.Seek
// (io.SeekStart, io.SeekCurrent, io.SeekEnd). As with os.File, its errors
// are *fs.PathError: the kernel's (EINVAL for a bad whence or a negative
// position), or fs.ErrClosed once the file is closed.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	if f.osf != nil {
		pos, err := f.osf.Seek(offset, whence)
		return pos, f.gof.fileErr(err)
	}
	f.posMu.Lock()
	defer f.posMu.Unlock()
	if err := f.sfd.acquire(); err != nil {
		return 0, f.pathErr("seek", fileErr(err))
	}
	defer f.sfd.releaseRef()
	pos, err := unix.Seek(f.sfd.fd, offset, whence)
	if err != nil {
		return 0, f.pathErr("seek", err)
	}
	return pos, nil
}
