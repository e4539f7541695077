//go:build linux

package executor

import (
	"context"
	"io"
	"os"
	"syscall"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// Splicing: io.Copy between two Conns, or between a regular file and a Conn,
// moves the bytes inside the kernel. Each chunk is one SPLICE from the source
// into a pipe and one (or more, if the socket takes part) from the pipe into
// the destination, all operations of the loop's lifecycle, so Close,
// deadlines and the executor's Close cut them short like any other. The
// kernel runs SPLICE in an io-wq worker thread, blocking; so that an idle
// connection holds no thread, a POLL for data on a source socket comes first.

// pipeSize is the pipe capacity asked for: the largest chunk one SPLICE moves.
const pipeSize = 1 << 20

// ReadFrom implements io.ReaderFrom, which io.Copy uses. From a *Conn or a
// regular file (an *os.File, or any syscall.Conn of one), possibly inside an
// *io.LimitedReader, the bytes are spliced; from anything else, copied.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	limit := int64(-1)
	src := r
	lr, _ := r.(*io.LimitedReader)
	if lr != nil {
		if lr.N <= 0 {
			return 0, nil
		}
		src, limit = lr.R, lr.N
	}
	var n int64
	var handled bool
	var err error
	switch s := src.(type) {
	case *Conn:
		s.rmu.Lock() // source before destination, as WriteTo takes them
		c.wmu.Lock()
		n, err = spliceConns(c, s, limit)
		c.wmu.Unlock()
		s.rmu.Unlock()
		handled = true
	case syscall.Conn:
		c.wmu.Lock()
		n, handled, err = c.spliceFile(s, limit, true)
		c.wmu.Unlock()
	}
	if lr != nil {
		lr.N -= n
	}
	if !handled {
		c.wmu.Lock()
		n, err = io.Copy(connWriter{c}, r)
		c.wmu.Unlock()
	}
	if err != nil {
		err = c.opError("readfrom", err)
	}
	return n, err
}

// WriteTo implements io.WriterTo, which io.Copy prefers: to a *Conn or a
// regular file the bytes are spliced, to anything else copied. It returns
// at EOF, with a nil error.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	var n int64
	var err error
	switch d := w.(type) {
	case *Conn:
		d.wmu.Lock()
		n, err = spliceConns(d, c, -1)
		d.wmu.Unlock()
	case syscall.Conn:
		var handled bool
		if n, handled, err = c.spliceFile(d, -1, false); !handled {
			n, err = io.Copy(w, connReader{c})
		}
	default:
		n, err = io.Copy(w, connReader{c})
	}
	if err != nil {
		err = c.opError("writeto", err)
	}
	return n, err
}

// connWriter and connReader are a Conn whose caller holds its write (read)
// lock, and hide ReadFrom and WriteTo from io.Copy.
type connWriter struct{ c *Conn }

func (w connWriter) Write(p []byte) (int, error) { return w.c.write(p) }

type connReader struct{ c *Conn }

func (r connReader) Read(p []byte) (int, error) { return r.c.read(p) }

// spliceConns copies from src to dst until EOF or limit bytes (limit < 0:
// no limit). The caller holds src.rmu and dst.wmu. The source's multishot
// receive is stopped first and what it had queued is written out, so the
// bytes keep their order.
func spliceConns(dst, src *Conn, limit int64) (int64, error) {
	src.rq.stop()
	var written int64
	buf := make([]byte, netBufSize)
	for limit < 0 || written < limit {
		want := len(buf)
		if limit >= 0 {
			want = int(min(int64(want), limit-written))
		}
		n, eof, rerr := src.rq.take(buf[:want])
		if n == 0 {
			if eof {
				return written, nil
			}
			if rerr != 0 {
				return written, os.NewSyscallError("read", rerr)
			}
			break
		}
		m, err := dst.write(buf[:n])
		written += int64(m)
		if err != nil {
			return written, err
		}
	}
	if limit >= 0 && written >= limit {
		return written, nil
	}
	l := dst.l
	sp, err := newSplicePipe()
	if err != nil {
		return written, err
	}
	defer sp.close()
	in := spliceEnd{conn: src, read: true}
	out := spliceEnd{conn: dst}
	n, handled, err := sp.copy(l, in, out, remaining(limit, written))
	written += n
	if !handled { // the kernel would not splice these: copy
		m, cerr := io.Copy(connWriter{dst}, connReader{src})
		return written + m, cerr
	}
	return written, err
}

func remaining(limit, done int64) int64 {
	if limit < 0 {
		return -1
	}
	return limit - done
}

// spliceFile splices between c and a regular file: from it if fromFile,
// else into it. handled is false if f is no regular file or the kernel
// refused at once: the caller copies instead.
func (c *Conn) spliceFile(f syscall.Conn, limit int64, fromFile bool) (n int64, handled bool, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	if !fromFile {
		c.rq.stop()
		if c.rq.pending() { // data already received goes first: copy
			return 0, false, nil
		}
	}
	cerr := rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return
		}
		if fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0); !fromFile && (err != nil || fl&unix.O_APPEND != 0) {
			return // splice refuses to append
		}
		sp, perr := newSplicePipe()
		if perr != nil {
			return
		}
		defer sp.close()
		file := spliceEnd{fd: int(fd)}
		if fromFile {
			n, handled, err = sp.copy(c.l, file, spliceEnd{conn: c}, limit)
		} else {
			n, handled, err = sp.copy(c.l, spliceEnd{conn: c, read: true}, file, limit)
		}
	})
	if cerr != nil && !handled {
		return 0, false, nil
	}
	return n, handled, err
}

// spliceEnd is one side of a splice: a Conn (whose Close and deadline cut
// the operation short) or a file's descriptor.
type spliceEnd struct {
	conn *Conn
	read bool // the source: the read deadline applies, else the write one
	fd   int  // when conn is nil
}

// run does one SPLICE (or POLL) with this end's descriptor, returning bytes
// moved or why it failed; errno is set for a plain kernel error.
func (e spliceEnd) run(l *loop, prep func(sqe *ring.SQE, fd int)) (int, syscall.Errno, error) {
	var n int
	var err error
	if c := e.conn; c != nil {
		dl, slot := &c.wdl, &c.wop
		if e.read {
			dl, slot = &c.rdl, &c.rop
		} else if err := c.sendsDone(); err != nil { // bytes written before go first
			return 0, 0, netError(err)
		}
		if dl.passed() {
			return 0, 0, os.ErrDeadlineExceeded
		}
		n, err = c.run(slot, prep)
	} else {
		fd := e.fd
		n, err = l.run(context.Background(), nil, nil, func(sqe *ring.SQE, _ *op) { prep(sqe, fd) })
	}
	errno, _ := err.(syscall.Errno)
	return n, errno, netError(syscallErr("splice", err))
}

// splicePipe is the pipe bytes pass through.
type splicePipe struct {
	r, w int
	size int
}

func newSplicePipe() (*splicePipe, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	sp := &splicePipe{r: p[0], w: p[1], size: 64 << 10}
	if n, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, pipeSize); err == nil {
		sp.size = n
	}
	return sp, nil
}

func (sp *splicePipe) close() {
	unix.Close(sp.r)
	unix.Close(sp.w)
}

// copy moves bytes from in to out through the pipe until EOF or limit
// (< 0: none). handled is false if the very first splice was refused as
// unsupported (nothing moved).
func (sp *splicePipe) copy(l *loop, in, out spliceEnd, limit int64) (written int64, handled bool, err error) {
	for limit < 0 || written < limit {
		chunk := sp.size
		if limit >= 0 {
			chunk = int(min(int64(chunk), limit-written))
		}
		if in.conn != nil {
			// SPLICE runs in an io-wq worker and would block it until data
			// came: wait for data with a POLL, which holds no thread.
			if _, _, err := in.run(l, func(sqe *ring.SQE, fd int) {
				sqe.PrepPollAdd(fd, unix.POLLIN|unix.POLLRDHUP)
			}); err != nil {
				return written, true, err
			}
		}
		n, errno, err := in.run(l, func(sqe *ring.SQE, fd int) {
			sqe.PrepSplice(fd, -1, sp.w, -1, uint32(chunk), unix.SPLICE_F_MOVE)
		})
		if err != nil {
			if written == 0 && unsupported(errno) {
				return 0, false, nil
			}
			return written, true, err
		}
		if n == 0 {
			return written, true, nil // EOF
		}
		for n > 0 {
			m, _, err := out.run(l, func(sqe *ring.SQE, fd int) {
				sqe.PrepSplice(sp.r, -1, fd, -1, uint32(n), unix.SPLICE_F_MOVE)
			})
			if err != nil { // what the pipe still holds is lost
				return written, true, err
			}
			if m == 0 {
				return written, true, io.ErrShortWrite
			}
			n -= m
			written += int64(m)
			l.net.spliced.Add(uint64(m))
		}
	}
	return written, true, nil
}

// unsupported reports errors by which the kernel says it cannot splice
// these descriptors, as opposed to an I/O error.
func unsupported(errno syscall.Errno) bool {
	return errno == syscall.EINVAL || errno == syscall.EOPNOTSUPP || errno == syscall.ENOSYS
}
