package loadgen

import (
	"fmt"
	"syscall"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// maxSleep bounds one wait in io_uring_enter, so that a stuck server is
// noticed and the window closes on time even at a low rate.
const maxSleep = 100 * time.Millisecond

// openDepth returns how many requests of size bytes a connection's output
// buffer holds: enough to write those due while a send is in flight,
// 64 KiB or less unless that is under 4.
func openDepth(size int) int { return min(max((64<<10)/max(size, 1), 4), 64) }

// openLoop runs the open loop until the measured window has closed or
// something failed: each turn makes the sends due by now, sleeps in
// io_uring_enter until a completion comes or the next send is due, and
// handles the completions.
func (d *driver) openLoop() (Result, error) {
	var res Result
	d.sched = schedule{start: d.now(), rate: d.cfg.Rate, conns: len(d.conns), tick: d.cfg.Tick}
	warmEnd := d.sched.start + d.cfg.Warmup
	var windowStart, cpu0 time.Duration
	var enters0, k0 uint64
	lastProgress := d.sched.start
	for i := range d.conns {
		d.recv(&d.conns[i])
	}
	timed := d.r.HasFeature(ring.FeatExtArg)
	for d.err == nil {
		now := d.now()
		d.release(now)
		sleep := min(d.sched.at(d.issued)-now, maxSleep) // > 0: every send due by now is out
		// The sends just queued complete in the enter that submits them,
		// mostly: wait for those and one more (a reply, or the time to
		// send), so that they do not each cost an enter of their own.
		waitNr := 1 + d.newSends
		d.newSends = 0
		var err error
		if timed {
			_, err = d.r.SubmitAndWaitTimeout(waitNr, sleep)
		} else {
			d.armTimer(sleep)
			_, err = d.r.SubmitAndWait(waitNr)
		}
		if err != nil && err != syscall.ETIME && err != syscall.EBUSY && err != syscall.EAGAIN && err != syscall.EINTR {
			return res, fmt.Errorf("loadgen: io_uring_enter: %w", err)
		}
		now = d.now()
		if d.reap(now) > 0 || d.outstanding == 0 {
			lastProgress = now
		} else if now-lastProgress > d.cfg.Stall {
			return res, fmt.Errorf("loadgen: no response from %s for %v (%d requests unanswered): server stuck", d.cfg.Addr, d.cfg.Stall, d.outstanding)
		}
		switch {
		case !d.measuring && now >= warmEnd:
			d.measuring = true
			d.requests = 0
			d.hist.Reset()
			d.lag.Reset()
			if d.cfg.OnWindow != nil {
				d.cfg.OnWindow(true)
			}
			cpu0, enters0 = threadCPU(), d.r.Stats().Enters
			windowStart = d.now()
			k0 = d.sched.due(windowStart)
		case d.measuring && now-windowStart >= d.cfg.Duration:
			res.CPU = threadCPU() - cpu0
			res.Enters = d.r.Stats().Enters - enters0
			res.Elapsed = now - windowStart
			res.Requests = d.requests
			res.Offered = d.cfg.Rate
			res.Scheduled = d.sched.due(now) - k0
			res.Outstanding = d.sched.due(now) - (d.issued - d.outstanding)
			if d.cfg.OnWindow != nil {
				d.cfg.OnWindow(false)
			}
			h, lag := d.hist, d.lag
			res.Latency, res.SendLag = &h, &lag
			return res, d.err
		}
	}
	return res, d.err
}

// release makes every send of the schedule due by now due on its
// connection, and writes and sends what it can.
func (d *driver) release(now time.Duration) {
	for due := d.sched.due(now); d.issued < due; d.issued++ {
		if d.measuring {
			d.lag.Record(now - d.sched.at(d.issued))
		}
		c := &d.conns[d.sched.conn(d.issued)]
		c.due++
		d.outstanding++
		d.pump(c)
	}
}

// pump writes c's due requests into its output buffer as far as there is
// room, and sends them unless a send is in flight (its completion pumps
// again).
func (d *driver) pump(c *conn) {
	for c.written < c.due {
		if c.outTail+d.msgSize > len(c.outMem) {
			if c.sending || c.outHead == 0 {
				break // full until the send in flight completes
			}
			c.outTail = copy(c.outMem, c.outMem[c.outHead:c.outTail])
			c.outHead = 0
			continue
		}
		c.outTail += d.pipe.message(c, c.written+1, c.outMem[c.outTail:c.outTail+d.msgSize])
		c.written++
	}
	if !c.sending && c.outTail > c.outHead {
		sqe := d.sqe()
		if sqe == nil {
			return
		}
		sqe.PrepSend(c.fd, c.outMem[c.outHead:c.outTail], unix.MSG_NOSIGNAL)
		sqe.SetFlags(d.sqeFlags)
		sqe.SetUserData(uint64(c.id)<<2 | opSend)
		c.sending, c.sendLen = true, c.outTail-c.outHead
		d.newSends++
	}
}

// armTimer queues a TIMEOUT of d unless one is in flight: the wake-up for
// the next send (or resend, udp.go) where io_uring_enter cannot time out by itself. One armed
// earlier ends no later than the next send is due (due times only move
// on), so it is left to fire.
func (d *driver) armTimer(sleep time.Duration) {
	if d.timerArmed {
		return
	}
	sqe := d.sqe()
	if sqe == nil {
		return
	}
	d.timerTS = unix.NsecToTimespec(int64(sleep))
	sqe.PrepTimeout(&d.timerTS, 0, 0)
	sqe.SetUserData(opTimer)
	d.timerArmed = true
}

// completeOpen handles one CQE of the open loop.
func (d *driver) completeOpen(cqe *ring.CQE, now time.Duration) {
	c, op, final, data, ok := d.decode(cqe, func(c *conn) string { return fmt.Sprintf("request %d", c.recvd+1) })
	if !ok {
		return
	}
	if op == opSend {
		c.sending = false
		c.outHead += int(cqe.Res)
		if c.outHead == c.outTail {
			c.outHead, c.outTail = 0, 0
		}
		d.pump(c)
		return
	}
	if cqe.Res == 0 {
		d.fail(fmt.Errorf("conn %d request %d: server closed the connection", c.id, c.recvd+1))
		return
	}
	if data == nil {
		data = d.pipe.openWindow(c)[:cqe.Res]
	}
	n, err := d.pipe.consume(c, data)
	if err == nil && c.recvd+uint64(n) > c.written {
		err = fmt.Errorf("%d responses to %d requests sent", c.recvd+uint64(n), c.written)
	}
	if err != nil {
		d.fail(fmt.Errorf("conn %d, after %d responses: %w", c.id, c.recvd+uint64(n), err))
		return
	}
	for range n {
		if d.measuring {
			d.requests++
			d.hist.Record(now - d.sched.sendAt(c.id, c.recvd))
		}
		c.recvd++
	}
	d.outstanding -= uint64(n)
	if final {
		d.recv(c)
	}
}
