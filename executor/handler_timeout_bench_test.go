//go:build linux

package executor

import (
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// allTimeouts sets every kind of timeout, long enough not to fire.
var allTimeouts = []ServeOption{ServeReadTimeout(time.Minute), ServeWriteTimeout(time.Minute), ServeIdleTimeout(time.Minute)}

// BenchmarkServeEcho64Timeouts is BenchmarkServeEcho64 with a read, a
// write and an idle timeout on every connection.
func BenchmarkServeEcho64Timeouts(b *testing.B) { benchServeEcho64(b, allTimeouts...) }

// BenchmarkLoopTimeoutsTurn measures what a loop turn of 100,000
// connections pays for their timeouts: the turn's timer work (beginTurn,
// waitTimeout) and the stamps of 64 connections' traffic (a receive and a
// send each), with 0, 1 or all 100,000 connections holding read, write and
// idle timeouts. Each of the 64 has its state word updated first, as every
// completion does (recvEnded, sendDone), so that the cache miss of reaching
// a connection among 100,000 is the turn's in all three cases. The cost
// does not grow with the number of timeouts (a turn looks at the heap's
// first entry only), but with nothing else to do the stamps' stores into
// 64 cache-cold connections show: about 15 against 5 µs here, and 1.5
// against 0.5 µs with 1,000 connections, which stay in the cache.
// BenchmarkLoopTimeoutsTraffic measures them inside a turn's real work.
func BenchmarkLoopTimeoutsTurn(b *testing.B) {
	for _, n := range []int{0, 1, 100_000} {
		b.Run(fmt.Sprintf("timeouts=%d", n), func(b *testing.B) {
			cfg := &serveConfig{}
			if n > 0 {
				cfg.readTO, cfg.writeTO, cfg.idleTO = time.Hour, time.Hour, time.Hour
			}
			l := &hloop{cfg: cfg}
			conns := make([]*HConn, 100_000)
			for i := range conns {
				c := &HConn{l: l}
				conns[i] = c
				if i < n {
					l.openTimeouts(c)
				}
			}
			rand.Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] })
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				l.st[ctrTurns]++ // a wait ended
				for j := range 64 {
					c := conns[(i*64+j)%len(conns)]
					c.st ^= hsRecving // the completion's own update
					c.stampRecv(true)
					c.stampSendStart()
					c.stampSent()
				}
				l.beginTurn()
				l.waitTimeout()
			}
		})
	}
}

// BenchmarkLoopTimeoutsRearm is the lazy check's cost when an entry comes
// due while its connection's traffic has pushed its timeout back: one heap
// move, with 100,000 entries.
func BenchmarkLoopTimeoutsRearm(b *testing.B) {
	const n = 100_000
	l := &hloop{cfg: &serveConfig{idleTO: time.Hour}}
	for range n {
		l.openTimeouts(&HConn{l: l})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h := &l.dl.heap[0]
		c := h.c
		c.tmo.idleAt = monoNow() // traffic pushed it back
		h.at = 0                 // and its entry is due
		l.runDeadlines(time.Now())
	}
	if l.st[ctrTimeouts] != 0 || len(l.dl.heap) != n {
		b.Fatalf("%d timeouts, %d entries", l.st[ctrTimeouts], len(l.dl.heap))
	}
}

// With timeouts set, the fast path still allocates nothing per message.
func TestServeEchoTimeoutsAllocNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	e := newTestExecutor(t)
	for _, mode := range hModes {
		t.Run(mode.String(), func(t *testing.T) {
			s := hServe(t, e, &hFuncs{}, append([]ServeOption{ServeLoops(1), ServeRecvMode(mode)}, allTimeouts...)...)
			c := hDial(t, s)
			msg, buf := make([]byte, 64), make([]byte, 64)
			roundTrip := func() {
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Fatal(err)
				}
			}
			for range 1000 {
				roundTrip()
			}
			if a := testing.AllocsPerRun(2000, roundTrip); a != 0 {
				t.Fatalf("%v allocations per echoed message", a)
			}
		})
	}
}

// BenchmarkLoopTimeoutsTraffic is a loop turn's own work for 64 of 100,000
// connections, with 0, 1 or all 100,000 holding read, write and idle
// timeouts: each connection's received message goes through the state
// machine to the handler (an echo), its send is started and completes, and
// the turn's timer work runs. Only the kernel is left out (nopIO), so what
// differs between the three is what the timeouts add to a turn.
func BenchmarkLoopTimeoutsTraffic(b *testing.B) {
	for _, n := range []int{0, 1, 100_000} {
		b.Run(fmt.Sprintf("timeouts=%d", n), func(b *testing.B) {
			cfg := &serveConfig{outLimit: 1 << 20, inLimit: 1 << 20}
			if n > 0 {
				cfg.readTO, cfg.writeTO, cfg.idleTO = time.Hour, time.Hour, time.Hour
			}
			l := &hloop{cfg: cfg, io: nopIO{}, h: &hFuncs{}}
			conns := make([]*HConn, 100_000)
			for i := range conns {
				c := &HConn{l: l, st: hsRecving}
				conns[i] = c
				if i < n {
					l.openTimeouts(c)
				}
			}
			rand.Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] })
			msg := make([]byte, 64)
			turn := func(batch []*HConn) {
				for _, c := range batch {
					c.recvd(msg)
				}
				l.reconcileDirty() // the echoes' sends start
				for _, c := range batch {
					c.sendDone(len(msg), nil)
				}
				l.reconcileDirty()
				l.beginTurn()
				l.waitTimeout()
			}
			for range 2 { // every connection's two output buffers made
				for i := 0; i+64 <= len(conns); i += 64 {
					turn(conns[i : i+64])
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				l.st[ctrTurns]++ // a wait ended
				turn(conns[(i*64)%(len(conns)-len(conns)%64):][:64])
			}
		})
	}
}

// nopIO is connIO without the kernel, for measuring the state machine.
type nopIO struct{}

func (nopIO) room() bool                 { return true }
func (nopIO) startRecv(*HConn)           {}
func (nopIO) stopRecv(*HConn)            {}
func (nopIO) startSend(*HConn, []byte)   {}
func (nopIO) stopSend(*HConn)            {}
func (nopIO) shutdownWrite(*HConn)       {}
func (nopIO) closeFD(*HConn)             {}
func (nopIO) hold([]byte) (uint16, bool) { return 0, false }
func (nopIO) release(uint16)             {}
