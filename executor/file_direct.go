//go:build linux

package executor

import (
	"context"
	"unsafe"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// checkDirect refuses, before anything is submitted, an O_DIRECT transfer
// that the kernel would refuse with a bare EINVAL.
func (f *File) checkDirect(op string, p []byte, off int64) error {
	if !f.direct || len(p) == 0 {
		return nil
	}
	var e *AlignmentError
	switch {
	case uintptr(unsafe.Pointer(&p[0]))%uintptr(f.memAlign) != 0:
		e = &AlignmentError{What: "buffer address", Value: int64(uintptr(unsafe.Pointer(&p[0]))), Align: f.memAlign}
	case len(p)%f.offAlign != 0:
		e = &AlignmentError{What: "length", Value: int64(len(p)), Align: f.offAlign}
	case off%int64(f.offAlign) != 0:
		e = &AlignmentError{What: "offset", Value: off, Align: f.offAlign}
	default:
		return nil
	}
	return f.pathErr(op, e)
}

// learnDirectAlign asks the kernel (statx STATX_DIOALIGN) what alignment
// O_DIRECT needs on this file, and assumes DirectAlign where it does not say.
func (f *File) learnDirectAlign() {
	f.memAlign, f.offAlign = DirectAlign, DirectAlign
	st, err := f.statx(context.Background(), unix.STATX_DIOALIGN)
	if err != nil || st.Mask&unix.STATX_DIOALIGN == 0 || st.Dio_mem_align == 0 || st.Dio_offset_align == 0 {
		return
	}
	f.memAlign, f.offAlign = int(st.Dio_mem_align), int(st.Dio_offset_align)
}

// emptyPath is the "" that statx gets with AT_EMPTY_PATH (global: not on a stack).
var emptyPath = [1]byte{}

// statx runs a STATX op on the file's descriptor.
func (f *File) statx(ctx context.Context, mask uint32) (*unix.Statx_t, error) {
	st := new(unix.Statx_t)
	if f.osf != nil {
		if err := unix.Statx(int(f.osf.Fd()), "", unix.AT_EMPTY_PATH, int(mask), st); err != nil {
			return nil, f.pathErr("stat", err)
		}
		return st, nil
	}
	_, err := f.run(ctx, "stat", func(s *ring.SQE, fd int) {
		s.PrepStatx(fd, &emptyPath[0], unix.AT_EMPTY_PATH, mask, st)
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}
