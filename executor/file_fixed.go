//go:build linux

package executor

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/kasync-go/kasync/ring"
)

// maxFixedBuffers is the kernel's limit on a ring's registered buffers.
const maxFixedBuffers = 1 << 14

// RegisterBuffers allocates n buffers of size bytes each (aligned to
// DirectAlign, so they suit O_DIRECT too) and registers them on every loop's
// ring at the same indexes, so they work with any File of the executor. A
// ring holds one registration at a time: call UnregisterBuffers before
// registering again. Close of the executor unregisters them too.
//
// On the Go backend the buffers are plain aligned memory and ReadAtFixed is
// ReadAt.
func (e *Executor) RegisterBuffers(n, size int) ([]FixedBuffer, error) {
	if n <= 0 || n > maxFixedBuffers || size <= 0 || size > 1<<30 {
		return nil, fmt.Errorf("executor: RegisterBuffers(%d, %d): need 1..%d buffers of 1 byte..1 GiB: %w",
			n, size, maxFixedBuffers, syscall.EINVAL)
	}
	if e.isClosing() { // the Go backend has no loop to say it
		return nil, fmt.Errorf("executor: RegisterBuffers: %w", ErrClosed)
	}
	stride := (size + DirectAlign - 1) / DirectAlign * DirectAlign
	mem := AlignedBuffer(n * stride)
	bufs := make([]FixedBuffer, n)
	raw := make([][]byte, n)
	for i := range bufs {
		raw[i] = mem[i*stride : i*stride+size : i*stride+size]
		bufs[i] = FixedBuffer{b: raw[i], index: uint16(i)}
	}
	for i, l := range e.loops {
		l.mu.Lock()
		err := errClosedLoop(l)
		if err == nil {
			err = l.r.RegisterBuffers(raw)
		}
		l.mu.Unlock()
		if err != nil {
			for _, done := range e.loops[:i] {
				done.mu.Lock()
				if !done.closed {
					done.r.UnregisterBuffers()
				}
				done.mu.Unlock()
			}
			if errors.Is(err, syscall.EBUSY) {
				err = fmt.Errorf("%w (buffers are already registered: UnregisterBuffers first)", err)
			}
			return nil, fmt.Errorf("executor: RegisterBuffers: %w", err)
		}
	}
	return bufs, nil
}

// UnregisterBuffers drops the registered buffers from every ring. Operations
// already in flight on them finish normally.
func (e *Executor) UnregisterBuffers() error {
	var errs []error
	for _, l := range e.loops {
		l.mu.Lock()
		err := errClosedLoop(l)
		if err == nil {
			err = l.r.UnregisterBuffers()
		}
		l.mu.Unlock()
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func errClosedLoop(l *loop) error {
	if l.closed || l.isClosing() {
		return ErrClosed
	}
	return nil
}

// ReadAtFixed is ReadAt into a registered buffer (READ_FIXED): it reads
// b.Len() bytes at off, or fewer with an error (io.EOF at end of file).
func (f *File) ReadAtFixed(b FixedBuffer, off int64) (n int, err error) {
	if f.osf != nil {
		return f.ReadAt(b.b, off)
	}
	if off < 0 {
		return 0, f.pathErr("readat", errNegativeOff)
	}
	if err := f.checkDirect("read", b.b, off); err != nil {
		return 0, err
	}
	return f.readFull(context.Background(), b.b, off, func(s *ring.SQE, fd int, p []byte, off int64) { s.PrepReadFixed(fd, p, off, b.index) })
}

// WriteAtFixed is WriteAt from a registered buffer (WRITE_FIXED).
func (f *File) WriteAtFixed(b FixedBuffer, off int64) (n int, err error) {
	if f.osf != nil || f.appendMode {
		return f.WriteAt(b.b, off)
	}
	if off < 0 {
		return 0, f.pathErr("writeat", errNegativeOff)
	}
	if err := f.checkDirect("write", b.b, off); err != nil {
		return 0, err
	}
	return f.writeFull(context.Background(), b.b, off, func(s *ring.SQE, fd int, p []byte, off int64) { s.PrepWriteFixed(fd, p, off, b.index) })
}
