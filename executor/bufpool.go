//go:build linux

package executor

import (
	"unsafe"

	"github.com/kasync-go/kasync/ring"
)

// bufPool is a ring of provided buffers that multishot receives fill, the
// one pool both kinds of loop use: each fast-path loop has one, on its own
// thread, handing the bytes to OnData (deliver); each goroutine loop has
// one, shared by its conns under netLoop's lock, which queue the buffers
// until Read copies them out.
//
// Buffers go back in one of two ways. In order (bundles and incremental
// consumption): buffer i is handed back only after buffer i-1, so ring
// entry i always holds buffer i mod count and a bundle's buffers are
// consecutive ids, consecutive memory. Or as they come (plain receives,
// the goroutine loops, whose conns hold buffers for as long as their reader
// takes). Either way Adds are published with one Advance (publish).
type bufPool struct {
	br      *ring.BufRing
	mode    RecvMode // RecvPlain, RecvBundle or RecvIncremental
	size    int
	count   int
	mem     unsafe.Pointer // buffer 0; the others follow it back to back
	ordered bool

	done   []bool  // ordered: buffers back but not yet their turn
	holds  []int32 // sends from each buffer still in flight (WriteNoCopy)
	held   []bool  // buffers back, waiting for their holds to end
	cur    int32   // the buffer deliver is handing to recvd, or -1
	next   uint16  // ordered: the id to hand back next
	adds   int     // Adds not yet published with Advance
	incOff []int32 // incremental: bytes of each buffer already used
}

// newBufPool registers count buffers of size bytes as group on r, in mode:
// RecvAuto takes the best the kernel has (incremental, else bundles, else
// plain); a mode the kernel lacks falls back to RecvPlain. size and count
// 0 take the mode's defaults: 64 KiB x 64 for incremental, 4 KiB x 512
// otherwise.
func newBufPool(r *ring.Ring, group uint16, mode RecvMode, size, count int) (*bufPool, error) {
	auto, given := mode == RecvAuto, size != 0
	if auto {
		mode = RecvIncremental
	}
	var br *ring.BufRing
	var err error
	if mode == RecvIncremental {
		if !given {
			size, count = 64<<10, 64
		}
		br, err = r.NewBufRing(group, uint32(count), size, ring.Incremental())
		if err != nil { // before 6.12
			mode = RecvPlain
			if auto {
				mode = RecvBundle
			}
		}
	}
	if mode == RecvBundle && !r.HasFeature(ring.FeatRecvSendBundle) {
		mode = RecvPlain
	}
	if mode != RecvIncremental {
		if !given {
			size, count = 4<<10, 512
		}
		if br, err = r.NewBufRing(group, uint32(count), size); err != nil {
			return nil, err
		}
	}
	memlocked.Add(int64(br.Memlock()))
	p := &bufPool{br: br, mode: mode, size: size, count: count, mem: unsafe.Pointer(&br.Buf(0)[0]),
		holds: make([]int32, count), held: make([]bool, count), cur: -1}
	if mode == RecvBundle && count > 1 && &br.Buf(1)[0] != (*byte)(unsafe.Add(p.mem, size)) {
		p.mode = RecvPlain // buffers not laid out back to back: no bundles
	}
	p.ordered = p.mode != RecvPlain
	if p.ordered {
		p.done = make([]bool, count)
	}
	if p.mode == RecvIncremental {
		p.incOff = make([]int32, count)
	}
	return p, nil
}

// Group is the buffer group id for the SQEs that receive into the pool.
func (p *bufPool) Group() uint16 { return p.br.Group() }

// Buf returns buffer id's memory.
func (p *bufPool) Buf(id uint16) []byte { return p.br.Buf(id) }

// deliver hands the res bytes a receive CQE names to c (recvd), however the
// mode packs them, and hands the buffers back (publish follows).
func (p *bufPool) deliver(c *HConn, res int32, flags uint32) {
	if flags&ring.CQEFBuffer == 0 {
		return
	}
	bid := uint16(flags >> 16)
	switch p.mode {
	case RecvIncremental:
		off := p.incOff[bid]
		p.cur = int32(bid)
		c.recvd(p.br.Buf(bid)[off : off+res])
		p.cur = -1
		if flags&ring.CQEFBufMore != 0 {
			p.incOff[bid] = off + res
		} else {
			p.incOff[bid] = 0
			p.recycle(bid)
		}
	case RecvBundle:
		n := int(res)
		for n > 0 {
			run := min(n, (p.count-int(bid))*p.size) // up to the end of the memory
			c.recvd(unsafe.Slice((*byte)(unsafe.Add(p.mem, int(bid)*p.size)), run))
			for k := (run + p.size - 1) / p.size; k > 0; k-- {
				p.recycle(bid)
				bid = (bid + 1) & uint16(p.count-1)
			}
			n -= run
		}
	default:
		p.cur = int32(bid)
		c.recvd(p.br.Buf(bid)[:res])
		p.cur = -1
		p.recycle(bid)
	}
}

// recycle hands buffer bid back: in id order if the pool is ordered, else
// at once. It goes to the kernel with the next publish.
func (p *bufPool) recycle(bid uint16) {
	if p.holds[bid] > 0 {
		p.held[bid] = true // back when the sends from it end (release)
		return
	}
	if !p.ordered {
		p.br.Add(bid, p.adds)
		p.adds++
		return
	}
	p.done[bid] = true
	mask := uint16(p.count - 1)
	for p.done[p.next] {
		p.done[p.next] = false
		p.br.Add(p.next, p.adds)
		p.adds++
		p.next = (p.next + 1) & mask
	}
}

// hold takes a hold on the buffer deliver is handing out, if b lies in
// it: the buffer does not go back to the kernel until release. Not in
// bundle mode, where one delivery spans buffers.
func (p *bufPool) hold(b []byte) (uint16, bool) {
	if p.cur < 0 || p.mode == RecvBundle || len(b) == 0 {
		return 0, false
	}
	buf := p.br.Buf(uint16(p.cur))
	start, end := uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&buf[0]))+uintptr(len(buf))
	if at := uintptr(unsafe.Pointer(&b[0])); at < start || at+uintptr(len(b)) > end {
		return 0, false
	}
	p.holds[p.cur]++
	return uint16(p.cur), true
}

// release ends a hold; the buffer goes back if it was due.
func (p *bufPool) release(bid uint16) {
	if p.holds[bid]--; p.holds[bid] == 0 && p.held[bid] {
		p.held[bid] = false
		p.recycle(bid)
	}
}

// publish makes the buffers recycled since the last publish the kernel's.
func (p *bufPool) publish() {
	if p.adds > 0 {
		p.br.Advance(p.adds)
		p.adds = 0
	}
}

// close unregisters the pool and frees its memory.
func (p *bufPool) close() {
	memlocked.Add(-int64(p.br.Memlock()))
	p.br.Close()
}
