//go:build linux

package ring

import "unsafe"

// SQE is a submission queue entry, laid out exactly as the kernel's struct
// io_uring_sqe (64 bytes). The unions of the C struct appear under the name of
// their most common member; the prep helpers fill them in correctly per opcode.
//
// An SQE obtained from GetSQE lives in memory shared with the kernel. Fill it in
// before the next Submit; do not keep the pointer after that.
type SQE struct {
	Opcode      Op     // operation
	Flags       uint8  // SQE* flags
	IoPrio      uint16 // ioprio, or per-op flags (accept, send, recv)
	Fd          int32  // file descriptor or registered file index
	Off         uint64 // offset, or addr2
	Addr        uint64 // buffer address, or splice_off_in
	Len         uint32 // length, or count
	OpFlags     uint32 // per-op flags (rw_flags, msg_flags, timeout_flags...)
	UserData    uint64 // returned unchanged in the CQE
	BufIndex    uint16 // registered buffer index, or buffer group
	Personality uint16
	SpliceFdIn  int32  // splice_fd_in, or file_index, or addr_len
	Addr3       uint64 // addr3, or optval
	_           uint64
}

const sqeSize = 64

var _ [sqeSize - unsafe.Sizeof(SQE{})]struct{}
var _ [unsafe.Sizeof(SQE{}) - sqeSize]struct{}

// SetFlags ORs flags (SQEIOLink, SQEAsync, ...) into the SQE.
func (s *SQE) SetFlags(flags uint8) { s.Flags |= flags }

// SetUserData sets the value returned in this SQE's completion(s).
func (s *SQE) SetUserData(v uint64) { s.UserData = v }

// SetBufferGroup asks the kernel to pick the buffer from provided-buffer group
// bgid (IOSQE_BUFFER_SELECT).
func (s *SQE) SetBufferGroup(bgid uint16) {
	s.Flags |= SQEBufferSelect
	s.BufIndex = bgid
}

// SetFileIndex makes an accept, open or socket install its file into the
// registered file table at index (or FileIndexAlloc) instead of returning an fd.
// The kernel counts slots from 1 here, except for FileIndexAlloc.
func (s *SQE) SetFileIndex(index uint32) {
	if index != FileIndexAlloc {
		index++
	}
	s.SpliceFdIn = int32(index)
}

// reset zeroes the SQE and sets its opcode, fd, address, length and offset:
// the common part of every prep helper.
func (s *SQE) reset(op Op, fd int32, addr uint64, length uint32, off uint64) {
	*s = SQE{Opcode: op, Fd: fd, Addr: addr, Len: length, Off: off}
}
