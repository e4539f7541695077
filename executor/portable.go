package executor

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// The types and helpers that are the same on every OS: the io_uring files
// (Linux) and executor_other.go both use them.

// ReadRequest is one read of a ReadBatch: Buf is filled from offset Off. N
// and Err are the result, as ReadAt would return them: N < len(Buf) only with
// an error, io.EOF at the end of the file.
type ReadRequest struct {
	Buf []byte
	Off int64
	N   int
	Err error
}

// WriteRequest is one write of a WriteBatch: Buf is written at offset Off. N
// and Err are the result, as WriteAt would return them.
type WriteRequest struct {
	Buf []byte
	Off int64
	N   int
	Err error
}

// DirectAlign is the alignment AlignedBuffer gives, and the one O_DIRECT I/O
// is checked against when the kernel does not report the file's own
// (statx STATX_DIOALIGN, Linux 6.1).
const DirectAlign = 4096

// AlignedBuffer returns a zeroed buffer of size bytes whose address is a
// multiple of DirectAlign, as O_DIRECT reads and writes need. It is ordinary
// Go memory (over-allocated, then sliced at the aligned address), kept alive
// by the garbage collector like any slice.
func AlignedBuffer(size int) []byte {
	if size <= 0 {
		return []byte{}
	}
	b := make([]byte, size+DirectAlign)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % DirectAlign); r != 0 {
		skip = DirectAlign - r
	}
	return b[skip : skip+size : skip+size]
}

// AlignmentError is why an O_DIRECT read or write was refused before it was
// submitted: the buffer's address, its length or the file offset is not a
// multiple of what the file needs. It wraps syscall.EINVAL, the kernel's own
// answer to such a request.
type AlignmentError struct {
	What  string // "buffer address", "length" or "offset"
	Value int64
	Align int
}

func (e *AlignmentError) Error() string {
	if e.What == "buffer address" {
		return fmt.Sprintf("O_DIRECT needs the buffer address aligned to %d bytes (%#x is not; AlignedBuffer gives such memory): %v",
			e.Align, e.Value, syscall.EINVAL)
	}
	return fmt.Sprintf("O_DIRECT needs the %s aligned to %d bytes (%d is not): %v", e.What, e.Align, e.Value, syscall.EINVAL)
}

// Unwrap returns syscall.EINVAL.
func (e *AlignmentError) Unwrap() error { return syscall.EINVAL }

// FixedBuffer is a buffer registered with the kernel (RegisterBuffers), for
// ReadAtFixed and WriteAtFixed: the kernel pinned its pages once, so the
// I/O skips mapping them on every call (READ_FIXED / WRITE_FIXED).
type FixedBuffer struct {
	b     []byte
	index uint16
}

// Bytes returns the buffer's memory.
func (b FixedBuffer) Bytes() []byte { return b.b }

// Len returns len(b.Bytes()).
func (b FixedBuffer) Len() int { return len(b.b) }

// Index returns the buffer's index in the kernel's table.
func (b FixedBuffer) Index() int { return int(b.index) }

// Slice returns the part [i:j] of the buffer, still registered; it panics
// if i or j is out of range, as slicing does.
func (b FixedBuffer) Slice(i, j int) FixedBuffer { return FixedBuffer{b: b.b[i:j:j], index: b.index} }

// sleepGo is Sleep on Go's runtime, for the fallback backend.
func sleepGo(ctx context.Context, d time.Duration, closing <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-closing:
		return ErrClosed
	}
}

// openOS opens name with Go's os, as a File the executor tracks (its Close
// closes it), for the Go backend on every OS.
func (e *Executor) openOS(name string, flag int, perm os.FileMode) (*File, error) {
	if e.isClosing() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errFileExecClosed{}}
	}
	osf, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	f := e.newFileGo(osf, flag)
	if f.gof.st.byExec() {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errFileExecClosed{}}
	}
	return f, nil
}
