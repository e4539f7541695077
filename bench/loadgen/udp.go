package loadgen

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// UDP runs UDP echo against cfg.Addr: cfg.Conns connected UDP sockets, each
// with one datagram of cfg.Size bytes outstanding (closed loop); when its
// echo comes back, checked byte for byte, the next one goes out. A datagram
// left unanswered for cfg.Resend is sent again (Result.Resent), so a lost
// one costs its timeout, in the latency's tail, instead of hanging the run;
// an echo that comes after its round is done (the first echo of a datagram
// sent again, or a duplicate) is checked too and counted (Result.Late).
// Latency counts from a round's first send. There is no open loop for it.
//
// A datagram is its round number (8 bytes, little-endian) followed by the
// pattern of its connection and round (fillPattern), so cfg.Size is at
// least 8.
func UDP(cfg Config) (Result, error) {
	cfg.setDefaults()
	if cfg.Size < 8 {
		return Result{}, fmt.Errorf("loadgen: UDP datagrams of %d bytes: at least 8 (the round number)", cfg.Size)
	}
	u := &udpLoad{size: cfg.Size, resend: cfg.Resend, want: make([]byte, cfg.Size),
		lastSend: make([]time.Duration, cfg.Conns), sending: make([]int, cfg.Conns)}
	return run(cfg, u)
}

// udpLoad is the UDP echo's state besides each conn's: c.out is the
// datagram of round c.round, sent at c.start and again whenever it goes
// unanswered.
type udpLoad struct {
	size     int
	resend   time.Duration
	want     []byte          // a late echo's expected bytes
	lastSend []time.Duration // when each connection's datagram last went out
	sending  []int           // each connection's sends in flight
	nextScan time.Duration   // when turn looks for datagrams to send again
	resent   uint64          // in the window
	late     uint64          // in the window
	heard    bool            // an echo came since the last turn
}

// sizes leaves a byte of room past a datagram, so that a longer echo shows.
func (u *udpLoad) sizes() (int, int)     { return u.size, u.size + 1 }
func (u *udpLoad) init(*conn)            {}
func (u *udpLoad) window(c *conn) []byte { return c.buf }
func (u *udpLoad) socketType() int       { return unix.SOCK_DGRAM }

func (u *udpLoad) start(d *driver, c *conn) { u.next(d, c, 0) }

// next sends c's datagram of its next round, and arms its receive unless
// a multishot one is still armed.
func (u *udpLoad) next(d *driver, c *conn, now time.Duration) {
	c.round++
	c.start = now
	c.out = c.outMem[:u.size]
	datagram(c.out, c.id, c.round)
	u.send(d, c, now)
	if !c.armed {
		d.recv(c)
	}
}

func (u *udpLoad) send(d *driver, c *conn, now time.Duration) {
	c.sent = 0
	d.send(c)
	u.sending[c.id]++
	u.lastSend[c.id] = now
}

func (u *udpLoad) complete(d *driver, c *conn, op uint8, final bool, res int32, data []byte, now time.Duration) {
	if op == opSend {
		u.sending[c.id]--
		if int(res) != u.size {
			d.fail(fmt.Errorf("udp: conn %d round %d: sent %d bytes of a %d-byte datagram", c.id, c.round, res, u.size))
		}
		return
	}
	if data == nil {
		data = c.buf[:res]
	}
	if final {
		defer d.recv(c) // after the next round, if any, has begun
	}
	u.heard = true
	round, err := u.check(c, data)
	switch {
	case err != nil:
		d.fail(fmt.Errorf("udp: conn %d round %d: %w", c.id, c.round, err))
	case round == c.round:
		if d.measuring {
			d.requests++
			d.hist.Record(now - c.start)
		}
		u.next(d, c, now)
	case d.measuring:
		u.late++
	}
}

// check judges an echo that came to c: of what round it is, and an error
// unless it is, byte for byte, the datagram of a round c has sent.
func (u *udpLoad) check(c *conn, data []byte) (uint64, error) {
	if len(data) != u.size {
		return 0, fmt.Errorf("an echo of %d bytes to a datagram of %d", len(data), u.size)
	}
	round := binary.LittleEndian.Uint64(data)
	want := c.out
	switch {
	case round == 0 || round > c.round:
		return 0, fmt.Errorf("an echo of round %d, which was not sent (bytes 0-7: %x)", round, data[:8])
	case round < c.round:
		datagram(u.want, c.id, round)
		want = u.want
	}
	if !bytes.Equal(data, want) {
		for i := range data {
			if data[i] != want[i] {
				return 0, fmt.Errorf("echo mismatch at byte %d of %d of round %d's datagram: sent %#02x, got %#02x", i, u.size, round, want[i], data[i])
			}
		}
	}
	return round, nil
}

// turn sends again, about every resend/10, each datagram unanswered for
// resend; the loop's wait ends by the next look (d.wakeBy), or without
// EXT_ARG a TIMEOUT wakes it, so that resends go out when all are waiting.
func (u *udpLoad) turn(d *driver, now time.Duration) bool {
	if now >= u.nextScan {
		u.nextScan = now + u.resend/10
		d.wakeBy = u.nextScan
		for i := range d.conns {
			if u.sending[i] == 0 && now-u.lastSend[i] >= u.resend {
				u.send(d, &d.conns[i], now)
				if d.measuring {
					u.resent++
				}
			}
		}
	}
	if !d.r.HasFeature(ring.FeatExtArg) {
		d.armTimer(u.resend / 10)
	}
	heard := u.heard
	u.heard = false
	return heard
}

func (u *udpLoad) onWindow(_ *driver, res *Result) {
	if res == nil {
		u.resent, u.late = 0, 0
		return
	}
	res.Resent, res.Late = u.resent, u.late
}

// datagram writes the datagram of round of connection id into b: the round
// number, then the pattern of both.
func datagram(b []byte, id int, round uint64) {
	binary.LittleEndian.PutUint64(b, round)
	fillPattern(b[8:], uint64(id), round)
}
