//go:build linux

package executor

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// CopyFile's pipeline: this many chunks in flight, of this size each.
const (
	copyChunks = 8
	copyChunk  = 256 << 10
)

// CopyFile is io.Copy(dst, src) for two Files: it copies from src's position
// to its end into dst at dst's position, advances both positions, and
// returns how many bytes it copied.
//
// Between two regular files it asks the kernel to copy with
// copy_file_range(2), in chunks of copyRangeChunk: the data never comes up
// to user memory, and file systems that share extents (XFS, Btrfs) copy
// none at all. io_uring has no such operation, so these calls are made on
// the calling goroutine, as os.File makes them. Where the kernel refuses
// (across file systems before 5.19, some special files), it keeps
// copyChunks reads and writes of copyChunk bytes in flight on the ring
// instead, each chunk written as soon as it has been read (so dst is
// written out of order; its size is final at the end). (Two SPLICEs per
// chunk through a pipe save the copy into user memory too, but the kernel
// runs every splice on an io-wq thread; measured here, that was slower.)
// A stream (pipe, terminal) or an O_APPEND dst is copied in order, one
// chunk at a time. On the Go backend it is io.Copy between the *os.Files,
// which uses copy_file_range too.
func (e *Executor) CopyFile(dst, src *File) (int64, error) {
	return e.CopyFileProgress(dst, src, nil)
}

// CopyFileProgress is CopyFile that calls progress with the number of bytes
// copied so far after each chunk, and once at the end. The calls never
// overlap; progress must return quickly.
func (e *Executor) CopyFileProgress(dst, src *File, progress func(copied int64)) (int64, error) {
	p := &copyProgress{fn: progress}
	n, err := copyFile(dst, src, p)
	if progress != nil {
		p.mu.Lock()
		progress(n)
		p.mu.Unlock()
	}
	return n, err
}

// copyProgress counts copied bytes for CopyFileProgress's callback.
type copyProgress struct {
	mu   sync.Mutex
	done atomic.Int64
	fn   func(int64)
}

func (p *copyProgress) add(n int) {
	d := p.done.Add(int64(n))
	if p.fn != nil {
		p.mu.Lock()
		p.fn(d)
		p.mu.Unlock()
	}
}

func copyFile(dst, src *File, p *copyProgress) (int64, error) {
	if dst.osf != nil && src.osf != nil && p.fn == nil {
		return io.Copy(dst.osf, src.osf)
	}
	if dst.osf != nil || src.osf != nil {
		return copyStream(dst, src, p)
	}
	srcOff, err1 := src.Seek(0, io.SeekCurrent)
	dstOff, err2 := dst.Seek(0, io.SeekCurrent)
	if err1 != nil || err2 != nil || dst.appendMode {
		return copyStream(dst, src, p)
	}
	var end int64 = -1 // where src ends, if it is a regular file
	if fi, err := src.Stat(); err == nil && fi.Mode().IsRegular() {
		end = fi.Size()
	}
	var n int64
	var err error
	if end > srcOff {
		n, err = copyRange(dst, src, dstOff, srcOff, end-srcOff, p)
		if err == errNoCopyRange {
			n, err = copyParallel(dst, src, dstOff, srcOff, end-srcOff, p)
		}
	}
	if err == nil && (end < 0 || srcOff+n >= end && !src.direct) {
		// What is left: all of a file of unknown size, or what was
		// appended to src during the parallel copy.
		var m int64
		m, err = copyAt(dst, src, dstOff+n, srcOff+n, p)
		n += m
	}
	if _, serr := src.Seek(srcOff+n, io.SeekStart); err == nil {
		err = serr
	}
	if _, serr := dst.Seek(dstOff+n, io.SeekStart); err == nil {
		err = serr
	}
	return n, err
}

// copyRangeChunk is how much one copy_file_range call moves: CopyFile's
// progress is reported, and Close of either file noticed, between calls.
const copyRangeChunk = 64 << 20

// errNoCopyRange: copy_file_range cannot copy between these two files.
var errNoCopyRange = errors.New("copy_file_range refused")

// noCopyRange makes copyRange refuse, so that tests reach the ring pipeline.
var noCopyRange bool

// copyRange copies span bytes of src at srcOff to dst at dstOff with
// copy_file_range. It returns errNoCopyRange, having copied nothing, when
// the kernel cannot copy between the two; otherwise like copyParallel.
func copyRange(dst, src *File, dstOff, srcOff, span int64, p *copyProgress) (int64, error) {
	if noCopyRange {
		return 0, errNoCopyRange
	}
	var n int64
	for n < span {
		if err := src.sfd.acquire(); err != nil {
			return n, src.pathErr("copy_file_range", fileErr(err))
		}
		if err := dst.sfd.acquire(); err != nil {
			src.sfd.releaseRef()
			return n, dst.pathErr("copy_file_range", fileErr(err))
		}
		roff, woff := srcOff+n, dstOff+n
		m, err := unix.CopyFileRange(src.sfd.fd, &roff, dst.sfd.fd, &woff, int(min(copyRangeChunk, span-n)), 0)
		dst.sfd.releaseRef()
		src.sfd.releaseRef()
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil && n == 0 && refusesCopyRange(err):
			return 0, errNoCopyRange
		case err != nil:
			return n, dst.pathErr("copy_file_range", err)
		case m == 0:
			return n, nil // src ended early: it shrank
		}
		n += int64(m)
		p.add(m)
	}
	return n, nil
}

// refusesCopyRange reports whether copy_file_range's err means it cannot
// copy between these files (rather than that the copy failed).
func refusesCopyRange(err error) bool {
	switch err {
	case syscall.EXDEV, syscall.EINVAL, syscall.ENOSYS, syscall.EOPNOTSUPP, syscall.EPERM, syscall.EBADF:
		return true
	}
	return false
}

// copyParallel copies span bytes of src at srcOff to dst at dstOff with
// copyChunks goroutines, each reading a chunk and writing it, the chunks
// handed out in order. It returns how many bytes form a complete prefix of
// the copy (less than span only if src shrank or on an error).
func copyParallel(dst, src *File, dstOff, srcOff, span int64, p *copyProgress) (int64, error) {
	var (
		next     atomic.Int64 // next chunk to hand out
		stop     atomic.Bool
		mu       sync.Mutex
		firstErr error
		short    = span // the lowest end of file met, relative to srcOff
		wg       sync.WaitGroup
	)
	fail := func(at int64, err error) {
		mu.Lock()
		if at < short {
			short = at
			if err != io.EOF {
				firstErr = err
			}
		}
		mu.Unlock()
		stop.Store(true)
	}
	workers := int(min(copyChunks, (span+copyChunk-1)/copyChunk))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := AlignedBuffer(copyChunk)
			for !stop.Load() {
				off := (next.Add(1) - 1) * copyChunk
				if off >= span {
					return
				}
				want := int(min(copyChunk, span-off))
				if src.direct {
					want = copyChunk // O_DIRECT reads whole blocks; a short read ends it
				}
				n, err := src.ReadAt(buf[:want], srcOff+off)
				if n > 0 {
					if _, werr := dst.WriteAt(buf[:n], dstOff+off); werr != nil {
						fail(off, werr)
						return
					}
					p.add(n)
				}
				if err != nil {
					fail(off+int64(n), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return short, firstErr
}

// copyAt copies src from srcOff to its end into dst at dstOff, in order.
func copyAt(dst, src *File, dstOff, srcOff int64, p *copyProgress) (int64, error) {
	buf := AlignedBuffer(copyChunk)
	var n int64
	for {
		m, err := src.ReadAt(buf, srcOff+n)
		if m > 0 {
			if _, werr := dst.WriteAt(buf[:m], dstOff+n); werr != nil {
				return n, werr
			}
			n += int64(m)
			p.add(m)
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// copyStream copies with Read and Write, in order: for files that cannot
// seek, an O_APPEND dst, or a File of each backend.
func copyStream(dst, src *File, p *copyProgress) (int64, error) {
	buf := AlignedBuffer(copyChunk)
	var n int64
	for {
		m, err := src.Read(buf)
		if m > 0 {
			if _, werr := dst.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
			p.add(m)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
