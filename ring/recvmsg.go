//go:build linux

package ring

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// RecvmsgOut is struct io_uring_recvmsg_out, the header a multishot RECVMSG
// writes at the start of each buffer it fills. The buffer then holds the
// source address (the msghdr's msg_namelen bytes reserved), the control
// messages (msg_controllen reserved) and the payload.
type RecvmsgOut struct {
	Namelen    uint32 // the source address's length, before truncation
	Controllen uint32 // the control messages' length
	Payloadlen uint32 // the datagram's length, before truncation
	Flags      uint32 // recvmsg's msg_flags: MSG_TRUNC, MSG_CTRUNC...
}

// SizeofRecvmsgOut is the size of RecvmsgOut in the buffer.
const SizeofRecvmsgOut = 16

// PrepRecvmsgMultishot posts a CQE (with CQEFMore) for every datagram, each
// in a buffer the kernel takes from group bgid, laid out as ParseRecvmsgOut
// reads it (IORING_OP_RECVMSG with IORING_RECV_MULTISHOT, Linux 6.0). Only
// msg's msg_namelen and msg_controllen count (the room reserved in each
// buffer; its iovec must be empty); msg: until the terminal CQE.
func (s *SQE) PrepRecvmsgMultishot(fd int, msg *unix.Msghdr, flags int, bgid uint16) {
	s.PrepRecvmsg(fd, msg, flags)
	s.IoPrio = RecvMultishot
	s.SetBufferGroup(bgid)
}

// ParseRecvmsgOut splits buf, a buffer a multishot RECVMSG filled (its first
// res bytes), whose msghdr reserved namelen bytes for the address and
// controllen for the control messages: as liburing's
// io_uring_recvmsg_validate, _name, _cmsg_firsthdr and _payload. name and
// control are cut to what the kernel wrote; payload is what the buffer
// holds of the datagram, shorter than out.Payloadlen (and MSG_TRUNC set in
// out.Flags) if the datagram did not fit. ok is false if buf is too short
// to hold the header and the reserved room.
func ParseRecvmsgOut(buf []byte, namelen, controllen uint32) (out RecvmsgOut, name, control, payload []byte, ok bool) {
	head := SizeofRecvmsgOut + int(namelen) + int(controllen)
	if len(buf) < head {
		return out, nil, nil, nil, false
	}
	out = RecvmsgOut{
		Namelen:    binary.NativeEndian.Uint32(buf[0:]),
		Controllen: binary.NativeEndian.Uint32(buf[4:]),
		Payloadlen: binary.NativeEndian.Uint32(buf[8:]),
		Flags:      binary.NativeEndian.Uint32(buf[12:]),
	}
	name = buf[SizeofRecvmsgOut : SizeofRecvmsgOut+int(min(out.Namelen, namelen))]
	c := SizeofRecvmsgOut + int(namelen)
	control = buf[c : c+int(min(out.Controllen, controllen))]
	return out, name, control, buf[head:], true
}
