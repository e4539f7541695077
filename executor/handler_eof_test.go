//go:build linux

package executor

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// hAllModes are the receive modes a server may be asked for (the Go backend
// takes them all and reads its own way).
var hAllModes = []RecvMode{RecvAuto, RecvPlain, RecvBundle, RecvIncremental}

// Every byte the peer sent before its FIN reaches OnData, whether or not
// receiving was paused for the output limit when the FIN came; only then
// does the connection close for EOF, and the echo of it all is still sent.
// An output limit below one receive's size (a 64 KiB write arrives as one
// skb: one incremental or bundle receive, or 16 plain ones in one turn; the
// Go backend reads 16 KiB) makes the connection pause and resume all along.
func TestServeEchoHalfCloseExact(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		for _, mode := range hAllModes {
			for _, tc := range []struct {
				name  string
				size  int
				chunk func(rng *rand.Rand) int
			}{
				{"4MiB-64KiB", 4 << 20, func(*rand.Rand) int { return 64 << 10 }},
				{"16MiB-random", 16 << 20, func(rng *rand.Rand) int { return 1 + rng.IntN(256<<10) }},
			} {
				t.Run(fmt.Sprintf("%v-%s", mode, tc.name), func(t *testing.T) {
					h := &hFuncs{}
					s := hServe(t, e, h, ServeLoops(1), ServeRecvMode(mode), ServeOutputLimit(8<<10))
					c := hDial(t, s)
					c.SetDeadline(time.Now().Add(60 * time.Second)) // a hang fails, not a slow run
					rng := rand.New(rand.NewPCG(uint64(tc.size), uint64(mode)))
					msg := make([]byte, tc.size)
					for i := 0; i < len(msg); i += 8 {
						v := rng.Uint64()
						for j := 0; j < 8 && i+j < len(msg); j++ {
							msg[i+j] = byte(v >> (8 * j))
						}
					}
					errc := make(chan error, 1)
					go func() {
						for rest := msg; len(rest) > 0; {
							n := min(len(rest), tc.chunk(rng))
							if _, err := c.Write(rest[:n]); err != nil {
								errc <- err
								return
							}
							rest = rest[n:]
						}
						errc <- c.(*net.TCPConn).CloseWrite()
					}()
					got, err := io.ReadAll(c)
					if err != nil {
						t.Fatalf("read to EOF after %d bytes: %v", len(got), err)
					}
					if err := <-errc; err != nil {
						t.Fatal(err)
					}
					if len(got) != len(msg) {
						t.Fatalf("echo: %d bytes then EOF, want %d", len(got), len(msg))
					}
					if !bytes.Equal(got, msg) {
						i := 0
						for got[i] == msg[i] {
							i++
						}
						t.Fatalf("echo differs at byte %d of %d", i, len(msg))
					}
					hWaitFor(t, "OnClose", func() bool { return h.closed.Load() == 1 })
					if errs := h.closeErrs(); errs[0] != io.EOF {
						t.Fatalf("OnClose error %v, want EOF", errs[0])
					}
					st := s.Stats()
					if st.Pauses < 1 {
						t.Fatalf("no pause: the test did not test the paused FIN (%+v)", st)
					}
					if st.BytesIn != uint64(len(msg)) || st.BytesOut != uint64(len(msg)) {
						t.Fatalf("bytes in %d out %d, want %d", st.BytesIn, st.BytesOut, len(msg))
					}
				})
			}
		}
	})
}

// The input limit counts only what the handler was offered and left
// unconsumed, not what arrived while receiving was paused for the output
// limit: a pipelining client gets every reply.
func TestServeInputLimitNotPausedInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *Executor) {
		for _, outLimit := range []int{16 << 10, 1 << 20} {
			t.Run(fmt.Sprintf("out%dKiB", outLimit>>10), func(t *testing.T) {
				pong := []byte("PONG\r\n")
				h := &hFuncs{data: func(c *HConn, d []byte) int {
					n := 0
					for len(d)-n >= 6 {
						if string(d[n:n+6]) != "PING\r\n" {
							c.Close()
							return len(d)
						}
						c.Write(pong)
						n += 6
					}
					return n
				}}
				s := hServe(t, e, h, ServeLoops(1), ServeInputLimit(64<<10), ServeOutputLimit(outLimit))
				c := hDial(t, s)
				c.SetDeadline(time.Now().Add(60 * time.Second))
				const count = 200000
				errc := make(chan error, 1)
				go func() {
					_, err := c.Write(bytes.Repeat([]byte("PING\r\n"), count))
					errc <- err
				}()
				got := make([]byte, count*len(pong))
				n, err := io.ReadFull(c, got)
				if err != nil {
					t.Fatalf("%d of %d replies, then %v (OnClose: %v)", n/len(pong), count, err, h.closeErrs())
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, bytes.Repeat(pong, count)) {
					t.Fatal("replies differ")
				}
				if errs := h.closeErrs(); len(errs) != 0 {
					t.Fatalf("closed: %v", errs)
				}
				t.Logf("%+v", s.Stats())
			})
		}
	})
}
