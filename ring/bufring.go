//go:build linux

package ring

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bufEntry mirrors struct io_uring_buf. The ring's tail shares the first
// entry's last two bytes (struct io_uring_buf_ring).
type bufEntry struct {
	addr uint64
	len  uint32
	bid  uint16
	_    uint16
}

// bufReg mirrors struct io_uring_buf_reg.
type bufReg struct {
	ringAddr    uint64
	ringEntries uint32
	bgid        uint16
	flags       uint16
	_           [3]uint64
}

// BufRing is a provided-buffer ring (Linux 5.19): count buffers of size bytes
// that the kernel picks from when an SQE selects buffer group Group (multishot
// receive). A CQE names the buffer it filled (CQE.BufferID); once the data is
// consumed, hand the buffer back with Recycle (or Add and Advance for a batch).
//
// Ring and buffers live in one anonymous mapping outside the Go heap, so they
// never move and the garbage collector never frees them under the kernel.
type BufRing struct {
	r           *Ring
	group       uint16
	size        int
	count       uint32
	incremental bool
	mem         []byte // the buffers
	ringMem     []byte // the whole mapping: ring entries, then buffers
	entries     []bufEntry
	tail        uint16 // local tail; published by Advance
	closed      bool
}

// BufRingOption modifies NewBufRing.
type BufRingOption func(*bufReg)

// Incremental asks for incremental consumption (Linux 6.12): the kernel fills
// one buffer across several receives, each CQE with CQEFBufMore until the
// buffer is used up; only then is it to be recycled. NewBufRing fails with
// EINVAL where the kernel lacks it.
func Incremental() BufRingOption { return func(b *bufReg) { b.flags |= pbufRingInc } }

// NewBufRing registers a ring of count buffers (a power of two, < 65536) of
// size bytes as buffer group group, all of them handed to the kernel.
func (r *Ring) NewBufRing(group uint16, count uint32, size int, opts ...BufRingOption) (*BufRing, error) {
	if r.closed {
		return nil, ErrClosed
	}
	if count == 0 || count&(count-1) != 0 || count >= 1<<16 || size <= 0 || size > 1<<31-1 {
		return nil, fmt.Errorf("ring: buffer ring of %d x %d bytes: %w", count, size, unix.EINVAL)
	}
	ringBytes := int(count) * int(unsafe.Sizeof(bufEntry{}))
	ringBytes = (ringBytes + os.Getpagesize() - 1) &^ (os.Getpagesize() - 1)
	mem, err := unix.Mmap(-1, 0, ringBytes+int(count)*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, os.NewSyscallError("mmap buffer ring", err)
	}
	br := &BufRing{r: r, group: group, size: size, count: count, mem: mem}
	br.entries = unsafe.Slice((*bufEntry)(unsafe.Pointer(&mem[0])), count)
	reg := &bufReg{ringAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))), ringEntries: count, bgid: group}
	for _, o := range opts {
		o(reg)
	}
	br.incremental = reg.flags&pbufRingInc != 0
	if _, err := r.register("buffer ring", regPbufRing, unsafe.Pointer(reg), 1); err != nil {
		unix.Munmap(mem)
		return nil, memlockError(err, "buffer ring", BufRingMemlock(count))
	}
	br.mem = mem[ringBytes:]
	br.ringMem = mem
	for id := uint32(0); id < count; id++ {
		br.Add(uint16(id), int(id))
	}
	br.Advance(int(count))
	return br, nil
}

// Group returns the buffer group id for SetBufferGroup / PrepRecvMultishot.
func (b *BufRing) Group() uint16 { return b.group }

// Size returns the size of each buffer.
func (b *BufRing) Size() int { return b.size }

// Count returns the number of buffers.
func (b *BufRing) Count() uint32 { return b.count }

// Incremental reports whether the ring consumes buffers incrementally.
func (b *BufRing) Incremental() bool { return b.incremental }

// Buf returns buffer id's memory (all of it; a CQE's Res says how much is data).
func (b *BufRing) Buf(id uint16) []byte {
	off := int(id) * b.size
	return b.mem[off : off+b.size : off+b.size]
}

// Add queues buffer id to be handed back to the kernel; the offset-th Add
// since the last Advance takes slot tail+offset. Nothing is visible to the
// kernel until Advance.
func (b *BufRing) Add(id uint16, offset int) {
	e := &b.entries[(b.tail+uint16(offset))&uint16(b.count-1)]
	e.addr = uint64(uintptr(unsafe.Pointer(&b.mem[int(id)*b.size])))
	e.len = uint32(b.size)
	e.bid = id
}

// Advance publishes n buffers queued with Add.
func (b *BufRing) Advance(n int) {
	b.tail += uint16(n)
	// The tail is a 16-bit word at byte 14, after the first entry's bid at
	// byte 12 (which only we write). Go has no 16-bit atomic store, so store
	// both halves as one 32-bit word with release ordering.
	word := (*uint32)(unsafe.Pointer(&b.ringMem[12]))
	bid0 := uint32(b.entries[0].bid)
	atomic.StoreUint32(word, uint32(b.tail)<<16|bid0)
}

// Recycle hands one buffer back to the kernel at once.
func (b *BufRing) Recycle(id uint16) {
	b.Add(id, 0)
	b.Advance(1)
}

// Close unregisters the group and frees its memory. Operations selecting from
// the group must have completed.
func (b *BufRing) Close() error {
	if b.closed {
		return ErrClosed
	}
	b.closed = true
	var err error
	if !b.r.closed {
		reg := &bufReg{bgid: b.group}
		_, err = b.r.register("unregister buffer ring", unregPbufRing, unsafe.Pointer(reg), 1)
	}
	return errors.Join(err, unix.Munmap(b.ringMem))
}
