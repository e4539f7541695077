//go:build linux

package ring

import (
	"syscall"
	"unsafe"
)

// CQE is a completion queue entry, laid out exactly as the kernel's struct
// io_uring_cqe (16 bytes).
type CQE struct {
	UserData uint64 // the SQE's UserData
	Res      int32  // result: >= 0 on success, -errno on failure
	Flags    uint32 // CQEF* flags; the upper 16 bits hold a buffer id
}

const cqeSize = 16

var _ [cqeSize - unsafe.Sizeof(CQE{})]struct{}
var _ [unsafe.Sizeof(CQE{}) - cqeSize]struct{}

// Err returns the errno carried by a failed completion, or nil.
func (c *CQE) Err() error {
	if c.Res < 0 {
		return syscall.Errno(-int64(c.Res))
	}
	return nil
}

// More reports whether a multishot request will post further completions
// (IORING_CQE_F_MORE). Without it, this is the request's last CQE.
func (c *CQE) More() bool { return c.Flags&CQEFMore != 0 }

// BufferID returns the provided buffer the kernel used, and whether it used one.
func (c *CQE) BufferID() (id uint16, ok bool) {
	return uint16(c.Flags >> cqeBufferShift), c.Flags&CQEFBuffer != 0
}

// BufferMore reports that the kernel consumed only part of an incremental
// provided buffer and will go on filling the rest (IORING_CQE_F_BUF_MORE).
func (c *CQE) BufferMore() bool { return c.Flags&CQEFBufMore != 0 }

// SockNonempty reports that the socket had more data queued after this receive.
func (c *CQE) SockNonempty() bool { return c.Flags&CQEFSockNonempty != 0 }

// Notification reports a zero-copy send's notification CQE: the kernel no longer
// uses the buffer.
func (c *CQE) Notification() bool { return c.Flags&CQEFNotif != 0 }
