//go:build linux

package executor

import (
	"context"
	"io"

	"github.com/kasync-go/kasync/ring"
)

// batchStack is how many ops a batch keeps on the stack before it allocates.
const batchStack = 64

// ReadBatch reads every request at once: all the reads are queued under one
// lock and submitted with one io_uring_enter, then it waits for all of them.
// Each request gets its own N and Err. It returns the first error other than
// io.EOF, in request order, or nil. The requests may be for overlapping or
// unordered ranges; their buffers must not overlap.
func (f *File) ReadBatch(reqs []ReadRequest) error {
	return f.ReadBatchContext(context.Background(), reqs)
}

// ReadBatchContext is ReadBatch that ctx can cut short.
func (f *File) ReadBatchContext(ctx context.Context, reqs []ReadRequest) error {
	for i := range reqs {
		r := &reqs[i]
		r.N, r.Err = 0, nil
		if r.Off < 0 {
			r.Err = f.pathErr("readat", errNegativeOff)
		} else {
			r.Err = f.checkDirect("read", r.Buf, r.Off)
		}
	}
	if f.osf != nil {
		for i := range reqs {
			if r := &reqs[i]; r.Err == nil {
				r.N, r.Err = f.osf.ReadAt(r.Buf, r.Off)
			}
		}
		return firstBatchErr(reqs, func(r *ReadRequest) error { return r.Err })
	}
	f.batch(ctx, len(reqs), "read",
		func(i int) bool { r := &reqs[i]; return r.Err == nil && len(r.Buf) > 0 },
		func(i int, s *ring.SQE, fd int) {
			r := &reqs[i]
			s.PrepRead(fd, r.Buf[:min(len(r.Buf), maxRW)], r.Off)
		},
		func(i, n int, err error) {
			r := &reqs[i]
			switch {
			case err == errInterrupted:
				r.N, r.Err = f.ReadAtContext(ctx, r.Buf, r.Off)
			case err != nil:
				r.N, r.Err = 0, err
			case n == 0:
				r.N, r.Err = 0, io.EOF
			case n < len(r.Buf) && f.direct:
				r.N, r.Err = n, io.EOF // see ReadAtContext
			case n < len(r.Buf): // a short read: finish it as ReadAt would
				m, err := f.ReadAtContext(ctx, r.Buf[n:], r.Off+int64(n))
				r.N, r.Err = n+m, err
			default:
				r.N, r.Err = n, nil
			}
		})
	return firstBatchErr(reqs, func(r *ReadRequest) error { return r.Err })
}

// WriteBatch writes every request at once, like ReadBatch: one lock, one
// io_uring_enter, then a wait for all. It returns the first error in request
// order, or nil. Requests for overlapping ranges land in no set order.
func (f *File) WriteBatch(reqs []WriteRequest) error {
	return f.WriteBatchContext(context.Background(), reqs)
}

// WriteBatchContext is WriteBatch that ctx can cut short.
func (f *File) WriteBatchContext(ctx context.Context, reqs []WriteRequest) error {
	for i := range reqs {
		r := &reqs[i]
		r.N, r.Err = 0, nil
		switch {
		case f.appendMode:
			r.Err = errWriteAtAppend
		case r.Off < 0:
			r.Err = f.pathErr("writeat", errNegativeOff)
		default:
			r.Err = f.checkDirect("write", r.Buf, r.Off)
		}
	}
	if f.osf != nil {
		for i := range reqs {
			if r := &reqs[i]; r.Err == nil {
				r.N, r.Err = f.osf.WriteAt(r.Buf, r.Off)
			}
		}
		return firstBatchErr(reqs, func(r *WriteRequest) error { return r.Err })
	}
	f.batch(ctx, len(reqs), "write",
		func(i int) bool { r := &reqs[i]; return r.Err == nil && len(r.Buf) > 0 },
		func(i int, s *ring.SQE, fd int) {
			r := &reqs[i]
			s.PrepWrite(fd, r.Buf[:min(len(r.Buf), maxRW)], r.Off)
		},
		func(i, n int, err error) {
			r := &reqs[i]
			switch {
			case err == errInterrupted:
				r.N, r.Err = f.WriteAtContext(ctx, r.Buf, r.Off)
			case err != nil:
				r.N, r.Err = 0, err
			case n < len(r.Buf): // a short write: finish it
				m, err := f.WriteAtContext(ctx, r.Buf[n:], r.Off+int64(n))
				r.N, r.Err = n+m, err
			default:
				r.N, r.Err = n, nil
			}
		})
	return firstBatchErr(reqs, func(r *WriteRequest) error { return r.Err })
}

func firstBatchErr[R any](reqs []R, errOf func(*R) error) error {
	for i := range reqs {
		if err := errOf(&reqs[i]); err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// batch runs one op for each i in [0, n) for which want(i) holds: it starts
// them all with one startBatch (one lock, one enter), waits for every one,
// and hands each result to done(i, n, err) in order. It is run's batch twin:
// the same reference on the descriptor, cancellation and error mapping.
func (f *File) batch(ctx context.Context, n int, name string, want func(i int) bool,
	prep func(i int, s *ring.SQE, fd int), done func(i, n int, err error)) {
	var stackOps [batchStack]*op
	var stackIdx [batchStack]int
	ops, idx := stackOps[:0], stackIdx[:0]
	for i := range n {
		if want(i) {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return
	}
	if len(idx) > batchStack {
		ops = make([]*op, len(idx))
	} else {
		ops = ops[:len(idx)]
	}
	s := f.sfd
	if err := s.acquire(); err != nil {
		for _, i := range idx {
			done(i, 0, f.pathErr(name, fileErr(err)))
		}
		return
	}
	defer s.releaseRef()
	l, fd := s.l, s.fd
	started, err := l.startBatch(ops, func(k int, sqe *ring.SQE, _ *op) { prep(idx[k], sqe, fd) })
	closing := s.isClosing() // Close's cancellation may have gone out before these
	for k := range started {
		o := ops[k]
		if closing {
			l.cancel(o)
		}
		m, err := l.await(o, ctx, nil, false).result(ctx, s, l)
		switch err {
		case nil:
			done(idx[k], m, nil)
		case errInterrupted:
			done(idx[k], 0, err) // the caller issues it again
		default:
			done(idx[k], 0, f.pathErr(name, fileErr(err)))
		}
	}
	for _, i := range idx[started:] {
		if err == nil {
			err = errCancelled
		}
		done(i, 0, f.pathErr(name, err))
	}
}
