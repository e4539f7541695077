package loadgen

import (
	"errors"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// protocol is what every load tells the driver: how much room its
// connections need and where a single-shot receive goes.
type protocol interface {
	// sizes returns the bytes of request and of receive room each
	// connection needs.
	sizes() (out, in int)
	// init sets connection c up once, before its first round.
	init(c *conn)
	// window returns where a single-shot receive of c's response goes next.
	window(c *conn) []byte
}

// pingPong is what differs between the echo and the HTTP load in the closed
// loop: what a request is and when a response is complete and correct.
type pingPong interface {
	protocol
	// begin prepares c.out for round c.round.
	begin(c *conn)
	// received takes data, the next bytes of c's response, and judges them:
	// whether the response is complete, and an error if it is wrong. data
	// is either a provided buffer or the window itself.
	received(c *conn, data []byte) (bool, error)
}

// ownLoop is a load that runs a closed loop of its own on the driver instead
// of ping-pong: the bulk stream (bulk.go) and UDP echo (udp.go). The driver
// dials, sets up, runs the turns, watches for a stall, opens and closes the
// window and tears down; the load starts each connection, handles its
// completions and keeps its own timers.
type ownLoop interface {
	protocol
	// socketType is unix.SOCK_STREAM or unix.SOCK_DGRAM.
	socketType() int
	// start puts c's first operations in the SQ.
	start(d *driver, c *conn)
	// complete handles one CQE of c that decode let through (res >= 0).
	complete(d *driver, c *conn, op uint8, final bool, res int32, data []byte, now time.Duration)
	// turn runs once per turn, after the completions, and reports whether
	// the server was heard from since the last turn: Config.Stall without
	// a word from it fails the run as stuck.
	turn(d *driver, now time.Duration) bool
	// onWindow is called as the window opens (res nil) and as it closes,
	// to add the load's own figures to res.
	onWindow(d *driver, res *Result)
}

// pipeliner is what the open loop needs of a protocol besides: requests
// written back to back, and a stream of responses to several of them.
type pipeliner interface {
	// message writes the request of round (1, 2, ...) of c into dst, which
	// has room for one request, and returns its length.
	message(c *conn, round uint64, dst []byte) int
	// consume takes data, the next bytes of c's response stream, checks
	// them, and returns how many responses they completed; c.recvd
	// responses were complete before.
	consume(c *conn, data []byte) (int, error)
	// openWindow returns where a single-shot receive of c's responses goes next.
	openWindow(c *conn) []byte
}

// Operation kinds, in the low bits of an SQE's user data; the connection
// index is in the bits above.
const (
	opSend = 1 << iota
	opRecv
	opTimer = opSend | opRecv // the open loop's TIMEOUT, without EXT_ARG (conn 0)
	// cancelData is the user data of close's ASYNC_CANCEL: op bits of a
	// timer, and conn 1, so it is neither a connection's op nor the timer.
	cancelData = 1<<2 | opTimer
)

// bufGroup is the provided-buffer group of the receive buffer ring.
const bufGroup = 0

// conn is one connection's state. out and buf point into the driver's
// arena, outside the Go heap, so the kernel may use them while the
// connection's operations are in flight.
type conn struct {
	id     int
	fd     int    // socket, or its index in the registered file table
	outMem []byte // room for a request
	out    []byte // the request of the current round (a prefix of outMem)
	buf    []byte // room for a response
	sent   int    // bytes of out sent this round
	got    int    // bytes of the response received this round
	round  uint64
	done   uint8 // ops finished for this round
	armed  bool  // a receive is in flight
	start  time.Duration

	// Open loop: out is not used; outMem holds the requests written and
	// not yet sent, outMem[outHead:outTail], of which a send in flight
	// (sending) has the first sendLen bytes.
	due     uint64 // requests due so far
	written uint64 // requests written to outMem so far
	recvd   uint64 // responses received in full so far
	outHead int
	outTail int
	sendLen int
	sending bool
}

// driver runs the ring and the connections on one locked thread.
type driver struct {
	cfg      Config
	proto    protocol
	pp       pingPong // the closed loop's, unless own is set
	own      ownLoop  // a load with a loop of its own, or nil
	r        *ring.Ring
	bufs     *ring.BufRing // provided buffers for multishot receives; nil: single-shot
	recycled int           // buffers given back since the last Advance
	sqeFlags uint8         // SQEFixedFile when the sockets are registered
	conns    []conn
	arena    []byte
	cqes     []ring.CQE
	epoch    time.Time

	wakeBy      time.Duration // an own loop's: the next turn's wait ends by then (0: none)
	inFlight    int           // operations submitted and not finished
	measuring   bool
	stopping    bool
	err         error
	requests    uint64
	hist        Histogram
	completions uint64 // CQEs handled in the window

	// Open loop (cfg.Rate > 0).
	open        bool
	pipe        pipeliner
	sched       schedule
	issued      uint64 // sends of the schedule made due so far
	outstanding uint64 // requests due and not answered
	msgSize     int    // room for one request
	lag         Histogram
	timerTS     unix.Timespec
	timerArmed  bool
	newSends    uint32 // sends queued since the last enter
}

// run generates cfg's load with proto on the calling goroutine, locked to its
// OS thread for the duration.
func run(cfg Config, proto protocol) (Result, error) {
	cfg.setDefaults()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	d := &driver{cfg: cfg, proto: proto, epoch: time.Now()}
	sotype := unix.SOCK_STREAM
	if own, ok := proto.(ownLoop); ok {
		d.own, sotype = own, own.socketType()
	} else if d.pp, ok = proto.(pingPong); !ok {
		return Result{}, errors.New("loadgen: a protocol without a loop")
	}
	fds, err := dial(cfg.Addr, cfg.Conns, sotype)
	if err != nil {
		return Result{}, err
	}
	if cfg.Rate > 0 {
		p, ok := proto.(pipeliner)
		if !ok || d.own != nil {
			closeAll(fds)
			return Result{}, errors.New("loadgen: this protocol has no open loop")
		}
		d.open, d.pipe = true, p
	}
	defer d.close(fds)
	if err := d.setup(fds); err != nil {
		return Result{}, err
	}
	if d.open {
		return d.openLoop()
	}
	return d.loop()
}

// setup creates the ring (SINGLE_ISSUER and DEFER_TASKRUN where the kernel
// has them), the buffers, and, unless cfg.Plain, registers the sockets, the
// ring fd and a ring of provided buffers for multishot receives.
func (d *driver) setup(fds []int) error {
	entries := uint32(64)
	if need := 2 * len(fds); need > 64 {
		entries = 1 << bits.Len(uint(need-1))
	}
	entries = min(entries, ring.MaxEntries)
	var err error
	d.r, err = ring.New(entries, ring.WithDeferTaskrun(), ring.WithCQSize(2*entries))
	if err != nil && !errors.Is(err, ring.ErrUnavailable) {
		// A kernel before 6.1 lacks DEFER_TASKRUN: a plain ring works too.
		d.r, err = ring.New(entries, ring.WithCQSize(2*entries))
	}
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	d.cqes = make([]ring.CQE, min(int(d.r.CQEntries()), 1024))

	outSize, inSize := d.proto.sizes()
	bufSize := inSize // of a provided buffer
	if d.open {
		// Room for several requests written while a send is in flight,
		// and for a partial response besides a whole buffer's worth.
		d.msgSize = outSize
		outSize *= openDepth(outSize)
		inSize *= 2
	}
	per := outSize + inSize
	total := (per*len(fds) + os.Getpagesize() - 1) &^ (os.Getpagesize() - 1)
	d.arena, err = unix.Mmap(-1, 0, total, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return os.NewSyscallError("mmap load buffers", err)
	}
	d.conns = make([]conn, len(fds))
	for i, fd := range fds {
		off := i * per
		c := &d.conns[i]
		c.id, c.fd = i, fd
		c.outMem = d.arena[off : off+outSize : off+outSize]
		c.buf = d.arena[off+outSize : off+per : off+per]
		d.proto.init(c)
	}
	if d.cfg.Plain {
		return nil
	}
	// Each is an optimization the run does without where the kernel lacks it.
	d.r.RegisterRingFd()
	reg := make([]int32, len(fds))
	for i, fd := range fds {
		reg[i] = int32(fd)
	}
	if d.r.RegisterFiles(reg) == nil {
		d.sqeFlags = ring.SQEFixedFile
		for i := range d.conns {
			d.conns[i].fd = i
		}
	}
	// Multishot receive (6.0) into a buffer ring (5.19); FeatRegRegRing
	// (6.3) stands for a kernel new enough.
	if d.r.HasFeature(ring.FeatRegRegRing) {
		count := uint32(64)
		if need := 2 * len(fds); need > 64 {
			count = 1 << bits.Len(uint(need-1))
		}
		count = min(count, 1<<15)
		if br, err := d.r.NewBufRing(bufGroup, count, min(max(bufSize, 64), 64<<10)); err == nil {
			d.bufs = br
		}
	}
	return nil
}

// loop runs turns until the measured window has closed or something failed.
func (d *driver) loop() (Result, error) {
	var res Result
	warmEnd := d.cfg.Warmup
	var windowStart, cpu0 time.Duration
	var enters0 uint64
	lastProgress := time.Duration(0)
	for i := range d.conns {
		if d.own != nil {
			d.own.start(d, &d.conns[i])
		} else {
			d.next(&d.conns[i], 0)
		}
	}
	timed := d.r.HasFeature(ring.FeatExtArg)
	for d.err == nil {
		var err error
		if timed {
			wait := maxSleep
			if d.wakeBy > 0 {
				wait = min(wait, max(d.wakeBy-d.now(), time.Microsecond))
			}
			_, err = d.r.SubmitAndWaitTimeout(1, wait)
		} else {
			_, err = d.r.SubmitAndWait(1)
		}
		if err != nil && err != syscall.ETIME && err != syscall.EBUSY && err != syscall.EAGAIN && err != syscall.EINTR {
			return res, fmt.Errorf("loadgen: io_uring_enter: %w", err)
		}
		now := d.now()
		n := d.reap(now)
		if d.measuring {
			d.completions += uint64(n)
		}
		progressed := n > 0
		if d.own != nil {
			progressed = d.own.turn(d, now)
		}
		if progressed {
			lastProgress = now
		} else if now-lastProgress > d.cfg.Stall {
			return res, fmt.Errorf("loadgen: no response from %s for %v (%d operations in flight): server stuck", d.cfg.Addr, d.cfg.Stall, d.inFlight)
		}
		switch {
		case !d.measuring && now >= warmEnd:
			d.measuring = true
			d.requests, d.completions = 0, 0
			d.hist.Reset()
			if d.own != nil {
				d.own.onWindow(d, nil)
			}
			if d.cfg.OnWindow != nil {
				d.cfg.OnWindow(true)
			}
			cpu0, enters0 = threadCPU(), d.r.Stats().Enters
			windowStart = d.now()
		case d.measuring && now-windowStart >= d.cfg.Duration:
			res.CPU = threadCPU() - cpu0
			res.Enters = d.r.Stats().Enters - enters0
			res.Elapsed = now - windowStart
			res.Requests = d.requests
			if d.own != nil {
				res.Completions = d.completions
				d.own.onWindow(d, &res)
			}
			if d.cfg.OnWindow != nil {
				d.cfg.OnWindow(false)
			}
			h := d.hist
			res.Latency = &h
			return res, d.err
		}
	}
	return res, d.err
}

func (d *driver) now() time.Duration { return time.Since(d.epoch) }

// reap handles every completion in the CQ and returns how many there were.
func (d *driver) reap(now time.Duration) int {
	total := 0
	for {
		n := d.r.PeekBatch(d.cqes)
		if n == 0 {
			return total
		}
		for i := range n {
			d.complete(&d.cqes[i], now)
		}
		d.r.CQAdvance(uint32(n))
		if d.recycled > 0 {
			d.bufs.Advance(d.recycled)
			d.recycled = 0
		}
		total += n
	}
}

// decode is the part of handling a CQE that both loops share: the op it
// ends or feeds, the received bytes (from a provided buffer, handed back at
// the end of the batch; data stays valid until then), and the errors that
// end the run, named with where(c). ok is false when the CQE needs no more.
func (d *driver) decode(cqe *ring.CQE, where func(*conn) string) (c *conn, op uint8, final bool, data []byte, ok bool) {
	c = &d.conns[cqe.UserData>>2]
	op = uint8(cqe.UserData & 3)
	final = op != opRecv || d.bufs == nil || !cqe.More()
	if final {
		d.inFlight--
		if op == opRecv {
			c.armed = false
		}
	}
	if op == opRecv && cqe.Res > 0 && d.bufs != nil {
		id, has := cqe.BufferID()
		if !has {
			d.fail(fmt.Errorf("conn %d: a multishot receive came without a buffer", c.id))
			return c, op, final, nil, false
		}
		data = d.bufs.Buf(id)[:cqe.Res]
		d.bufs.Add(id, d.recycled)
		d.recycled++
	}
	if d.stopping || d.err != nil {
		return c, op, final, nil, false
	}
	switch {
	case cqe.Res == -int32(syscall.ENOBUFS) && op == opRecv && d.bufs != nil:
		// Every provided buffer was in use: receive again once some are back.
		d.recv(c)
		return c, op, final, nil, false
	case cqe.Res < 0:
		d.fail(fmt.Errorf("conn %d %s: %s: %w", c.id, where(c), opName(op), syscall.Errno(-cqe.Res)))
		return c, op, final, nil, false
	}
	return c, op, final, data, true
}

// complete handles one CQE.
func (d *driver) complete(cqe *ring.CQE, now time.Duration) {
	if cqe.UserData&3 == opTimer { // the timer, or close's cancel
		d.inFlight--
		if cqe.UserData == opTimer {
			d.timerArmed = false
		}
		return
	}
	if d.open {
		d.completeOpen(cqe, now)
		return
	}
	c, op, final, data, ok := d.decode(cqe, func(c *conn) string { return fmt.Sprintf("round %d", c.round) })
	if !ok {
		return
	}
	if d.own != nil {
		d.own.complete(d, c, op, final, cqe.Res, data, now)
		return
	}
	switch op {
	case opSend:
		c.sent += int(cqe.Res)
		if c.sent < len(c.out) {
			d.send(c)
			return
		}
	case opRecv:
		if cqe.Res == 0 {
			d.fail(fmt.Errorf("conn %d round %d: server closed the connection after %d bytes of the response", c.id, c.round, c.got))
			return
		}
		if data == nil {
			data = d.proto.window(c)[:cqe.Res]
		}
		if c.done&opRecv != 0 {
			d.fail(fmt.Errorf("conn %d round %d: %d bytes from the server after a complete response", c.id, c.round, len(data)))
			return
		}
		full, err := d.pp.received(c, data)
		if err != nil {
			d.fail(fmt.Errorf("conn %d round %d: %w", c.id, c.round, err))
			return
		}
		if final {
			defer d.recv(c) // after the next round, if any, has begun
		}
		if !full {
			return
		}
	}
	c.done |= op
	if c.done == opSend|opRecv {
		if d.measuring {
			d.requests++
			d.hist.Record(now - c.start)
		}
		d.next(c, now)
	}
}

// next starts c's next round: its request, and unless a (multishot)
// receive is still armed, the receive of its response, go out together in
// the next enter.
func (d *driver) next(c *conn, now time.Duration) {
	c.round++
	c.sent, c.got, c.done = 0, 0, 0
	c.start = now
	d.pp.begin(c)
	d.send(c)
	if !c.armed {
		d.recv(c)
	}
}

func (d *driver) send(c *conn) {
	if sqe := d.sqe(); sqe != nil {
		sqe.PrepSend(c.fd, c.out[c.sent:], unix.MSG_NOSIGNAL)
		sqe.SetFlags(d.sqeFlags)
		sqe.SetUserData(uint64(c.id)<<2 | opSend)
	}
}

// recv arms c's receive: multishot into the buffer ring, or single-shot
// into the protocol's window.
func (d *driver) recv(c *conn) {
	if c.armed {
		return
	}
	sqe := d.sqe()
	if sqe == nil {
		return
	}
	switch {
	case d.bufs != nil:
		sqe.PrepRecvMultishot(c.fd, 0, bufGroup)
	case d.open:
		sqe.PrepRecv(c.fd, d.pipe.openWindow(c), 0)
	default:
		sqe.PrepRecv(c.fd, d.proto.window(c), 0)
	}
	c.armed = true
	sqe.SetFlags(d.sqeFlags)
	sqe.SetUserData(uint64(c.id)<<2 | opRecv)
}

// sqe returns a free SQE, submitting what is queued if the SQ is full, and
// counts the operation as in flight.
func (d *driver) sqe() *ring.SQE {
	sqe, err := d.r.GetSQE()
	if err == ring.ErrSQFull {
		if _, err = d.r.Submit(); err == nil || err == syscall.EBUSY || err == syscall.EAGAIN {
			sqe, err = d.r.GetSQE()
		}
	}
	if err != nil {
		d.fail(fmt.Errorf("loadgen: no SQE: %w", err))
		return nil
	}
	d.inFlight++
	return sqe
}

func (d *driver) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// close ends every connection: shut down, so that receives in flight
// complete, and what is still in flight cancelled (a UDP socket's multishot
// receive outlives its shutdown), then reaped, and only then are the ring,
// the buffers and the sockets released. Buffers the kernel might still
// write are leaked, not freed.
func (d *driver) close(fds []int) {
	d.stopping = true
	if d.r != nil {
		for _, fd := range fds {
			unix.Shutdown(fd, unix.SHUT_RDWR)
		}
		if d.inFlight > 0 {
			if sqe := d.sqe(); sqe != nil {
				sqe.PrepCancelAny()
				sqe.SetUserData(cancelData)
			}
		}
		deadline := d.now() + 2*time.Second
		for d.inFlight > 0 && d.now() < deadline {
			if _, err := d.r.SubmitAndWaitTimeout(1, 50*time.Millisecond); err != nil && err != syscall.ETIME && err != syscall.EINTR {
				break
			}
			d.reap(d.now())
		}
		if d.bufs != nil && d.inFlight == 0 {
			d.bufs.Close()
		}
		d.r.Close()
	}
	if d.arena != nil && d.inFlight == 0 {
		unix.Munmap(d.arena)
	}
	closeAll(fds)
}

func opName(op uint8) string {
	if op == opSend {
		return "send"
	}
	return "recv"
}
