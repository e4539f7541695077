//go:build linux

package ring

import (
	"syscall"
	"testing"
)

// FuzzCQEDecode: every (res, flags) pair a kernel could post decodes
// consistently: an error exactly when res is negative, carrying -res, and
// flag accessors agreeing with the bits.
func FuzzCQEDecode(f *testing.F) {
	f.Add(int32(0), uint32(0))
	f.Add(int32(-int32(syscall.ECANCELED)), CQEFMore)
	f.Add(int32(64), CQEFBuffer|CQEFMore|7<<cqeBufferShift)
	f.Add(int32(0), CQEFNotif)
	f.Add(int32(-2147483648), ^uint32(0))
	f.Fuzz(func(t *testing.T, res int32, flags uint32) {
		c := CQE{Res: res, Flags: flags}
		err := c.Err()
		if (err != nil) != (res < 0) {
			t.Fatalf("res %d: Err() = %v", res, err)
		}
		if res < 0 && err.(syscall.Errno) != syscall.Errno(-int64(res)) {
			t.Fatalf("res %d: errno %d", res, err.(syscall.Errno))
		}
		id, ok := c.BufferID()
		if ok != (flags&CQEFBuffer != 0) || id != uint16(flags>>16) {
			t.Fatalf("flags %#x: BufferID = %d, %v", flags, id, ok)
		}
		if c.More() != (flags&CQEFMore != 0) || c.Notification() != (flags&CQEFNotif != 0) ||
			c.SockNonempty() != (flags&CQEFSockNonempty != 0) || c.BufferMore() != (flags&CQEFBufMore != 0) {
			t.Fatalf("flags %#x decoded wrongly", flags)
		}
	})
}
