package executor

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// A loop's ring and its receive buffers: set-up in the best mode the
// kernel has, delivery of what a receive CQE names (plain, bundle,
// incremental), and recycling in buffer id order.

// setup runs on the loop's thread: the ring must be created by the thread
// that will submit to it (SINGLE_ISSUER), and a registered ring fd is
// per-thread.
func (l *hloop) setup() error {
	cfg := l.cfg
	entries := cfg.entries
	base := append([]ring.Option{ring.WithCQSize(8 * entries), ring.WithClamp(), ring.WithSubmitAll()}, cfg.ringOpts...)
	if cfg.keepP {
		base = append(base, ring.WithRawEnter())
	}
	var err error
	for _, extra := range [][]ring.Option{
		{ring.WithDeferTaskrun(), ring.WithTaskrunFlag(), ring.WithNoSQArray()},
		{ring.WithDeferTaskrun(), ring.WithTaskrunFlag()}, // before 6.6
		{ring.WithCoopTaskrun(), ring.WithTaskrunFlag()},  // before 6.1
	} {
		l.r, err = ring.New(entries, append(append([]ring.Option{}, base...), extra...)...)
		if !errors.Is(err, syscall.EINVAL) {
			break
		}
	}
	if err != nil {
		return err
	}
	l.r.RegisterRingFd() // an optimization; without it enter looks the fd up
	if cfg.direct {
		var rl unix.Rlimit
		n := uint32(1 << 16)
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Cur < uint64(n) {
			n = uint32(rl.Cur)
		}
		if err := l.r.RegisterFilesSparse(n); err != nil {
			return fmt.Errorf("direct files: %w", err)
		}
	}
	if cfg.zcThreshold > 0 && l.r.Supports(ring.OpSendZC) {
		l.zc = cfg.zcThreshold
	}
	return l.setupBuffers()
}

// setupBuffers registers the receive buffer ring in the best mode the
// kernel has (or the one asked for), falling back to plain.
func (l *hloop) setupBuffers() error {
	mode := l.cfg.recvMode
	auto := mode == RecvAuto
	if auto {
		mode = RecvIncremental
	}
	size, count := l.cfg.bufSize, l.cfg.bufCount
	var err error
	if mode == RecvIncremental {
		if size == 0 {
			size, count = 64<<10, 64
		}
		l.br, err = l.r.NewBufRing(0, uint32(count), size, ring.Incremental())
		if err != nil { // before 6.12
			mode = RecvPlain
			if auto {
				mode = RecvBundle
			}
		}
	}
	if mode == RecvBundle && !l.r.HasFeature(ring.FeatRecvSendBundle) {
		mode = RecvPlain
	}
	if mode != RecvIncremental {
		if l.cfg.bufSize == 0 {
			size, count = 4<<10, 512
		}
		if l.br, err = l.r.NewBufRing(0, uint32(count), size); err != nil {
			return err
		}
	}
	l.mode = mode
	l.pub.mode.Store(int64(mode))
	l.bufSize, l.bufCount = size, count
	l.bufDone = make([]bool, count)
	l.incOff = make([]int32, count)
	l.bufMem = unsafe.Pointer(&l.br.Buf(0)[0])
	if count > 1 && &l.br.Buf(1)[0] != (*byte)(unsafe.Add(l.bufMem, size)) && mode == RecvBundle {
		l.mode = RecvPlain // buffers not laid out back to back: no bundles
	}
	return nil
}

// received hands the res bytes a receive CQE names to the connection
// (recvd) and recycles the buffers.
func (l *hloop) received(c *HConn, res int32, flags uint32) {
	if flags&ring.CQEFBuffer == 0 {
		return
	}
	bid := uint16(flags >> 16)
	switch l.mode {
	case RecvIncremental:
		off := l.incOff[bid]
		c.recvd(l.br.Buf(bid)[off : off+res])
		if flags&ring.CQEFBufMore != 0 {
			l.incOff[bid] = off + res
		} else {
			l.incOff[bid] = 0
			l.recycle(bid)
		}
	case RecvBundle:
		n := int(res)
		for n > 0 {
			run := min(n, (l.bufCount-int(bid))*l.bufSize) // up to the end of the memory
			c.recvd(unsafe.Slice((*byte)(unsafe.Add(l.bufMem, int(bid)*l.bufSize)), run))
			for k := (run + l.bufSize - 1) / l.bufSize; k > 0; k-- {
				l.recycle(bid)
				bid = (bid + 1) & uint16(l.bufCount-1)
			}
			n -= run
		}
	default:
		c.recvd(l.br.Buf(bid)[:res])
		l.recycle(bid)
	}
}

// recycle hands buffer bid back, in id order (see bufDone).
func (l *hloop) recycle(bid uint16) {
	l.bufDone[bid] = true
	mask := uint16(l.bufCount - 1)
	for l.bufDone[l.bufNext] {
		l.bufDone[l.bufNext] = false
		l.br.Add(l.bufNext, l.bufAdds)
		l.bufAdds++
		l.bufNext = (l.bufNext + 1) & mask
	}
}
