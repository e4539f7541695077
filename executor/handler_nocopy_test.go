//go:build linux

package executor

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// A connection that echoes with WriteNoCopy to a peer that has stopped
// reading keeps no receive buffer from the ring: its sends never wait,
// what the socket does not take is copied, and the loop's other
// connections go on receiving, here 8 MiB, twice what the ring's buffers
// hold, so that one buffer kept back would stall them (the ordered modes
// hand buffers back in id order). Then the stalled peer reads everything:
// every byte, in order, in every receive mode.
func TestServeWriteNoCopyStalledPeer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		for _, mode := range hAllModes {
			t.Run(mode.String(), func(t *testing.T) {
				h := &hFuncs{data: func(c *HConn, d []byte) int {
					c.WriteNoCopy(d)
					return len(d)
				}}
				s := hServe(t, e, h, ServeLoops(1), ServeRecvMode(mode), ServeOutputLimit(256<<10))
				stalled := hDial(t, s)
				stalled.SetDeadline(time.Now().Add(60 * time.Second))
				msg := make([]byte, 16<<20)
				rng := rand.New(rand.NewPCG(uint64(mode), 7))
				for i := range msg {
					msg[i] = byte(rng.Uint32())
				}
				sent := make(chan error, 1)
				go func() {
					_, err := stalled.Write(msg) // blocks once the echo backs up
					if err == nil {
						err = stalled.(*net.TCPConn).CloseWrite()
					}
					sent <- err
				}()
				hWaitFor(t, "the echo to back up", func() bool { return s.Stats().Pauses > 0 })
				other := hDial(t, s)
				ping := make([]byte, 4<<10)
				for i := 0; i < 2048; i++ {
					ping[0] = byte(i)
					hRoundTrip(t, other, ping)
				}
				got, err := io.ReadAll(stalled)
				if err != nil {
					t.Fatalf("read back %d bytes: %v; %+v", len(got), err, s.Stats())
				}
				if err := <-sent; err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("echo: %d bytes, want %d, equal prefix %d", len(got), len(msg), commonPrefix(got, msg))
				}
				st := s.Stats()
				if e.Backend() == BackendIOURing && mode != RecvBundle && st.NoCopySends == 0 {
					t.Fatalf("no send from a receive buffer: %+v", st)
				}
				t.Logf("%d sends, %d from receive buffers, %d pauses", st.Sends, st.NoCopySends, st.Pauses)
			})
		}
	})
}

func commonPrefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// What WriteNoCopy's safety rests on, as the kernel does it: a SEND with
// MSG_DONTWAIT to a socket with no room completes at once with EAGAIN,
// where one without it waits (here, for ever) holding its buffer.
func TestSendDontWaitOnFullSocket(t *testing.T) {
	r, err := ring.New(8)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	buf := make([]byte, 64<<10)
	for { // fill it: nobody reads fds[1]
		if _, err := unix.Write(fds[0], buf); err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		flags int
		want  error // nil: still waiting after the timeout
	}{{unix.MSG_NOSIGNAL | unix.MSG_DONTWAIT, unix.EAGAIN}, {unix.MSG_NOSIGNAL, nil}} {
		sqe, err := r.GetSQE()
		if err != nil {
			t.Fatal(err)
		}
		sqe.PrepSend(fds[0], buf, tc.flags)
		sqe.SetUserData(uint64(tc.flags))
		if _, err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		cqe, err := r.WaitCQETimeout(200 * time.Millisecond)
		switch {
		case tc.want == nil && err == nil:
			t.Fatalf("flags %#x: a send to a full socket completed (%d)", tc.flags, cqe.Res)
		case tc.want == nil:
			// waiting, as expected; unix.Close ends it
		case err != nil:
			t.Fatalf("flags %#x: no completion: %v", tc.flags, err)
		case cqe.Res != -int32(unix.EAGAIN):
			t.Fatalf("flags %#x: res %d, want -EAGAIN", tc.flags, cqe.Res)
		default:
			r.CQAdvance(1)
		}
	}
}

// An echo with WriteNoCopy allocates nothing per message once warm: the
// borrowed send puts the connection's own buffer aside and takes it back.
func TestServeWriteNoCopyAllocsNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	forEachBackend(t, func(t *testing.T, e *Executor) {
		h := &hFuncs{data: func(c *HConn, d []byte) int {
			c.WriteNoCopy(d)
			return len(d)
		}}
		s := hServe(t, e, h, ServeLoops(1))
		c := hDial(t, s)
		msg, buf := make([]byte, 4<<10), make([]byte, 4<<10)
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
		if st := s.Stats(); e.Backend() == BackendIOURing && st.NoCopySends == 0 {
			t.Fatalf("no send from a receive buffer: %+v", st)
		}
	})
}
