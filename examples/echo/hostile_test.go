//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/exampletest"
)

// TestHostileClients runs the echo server in each mode against peers that
// misbehave, then checks it still answers, holds no more descriptors than
// before, and kept its memory bounded.
func TestHostileClients(t *testing.T) {
	for _, mode := range []string{"conn", "handler"} {
		t.Run(mode, func(t *testing.T) {
			p, addr := exampletest.Start(t, "-addr 127.0.0.1:0 -loops 1 -mode "+mode, nil)
			pid := p.Process.Pid
			exampletest.EchoOnce(t, addr, "warm up")
			baseFDs, baseRSS := exampletest.FDs(t, pid), exampletest.RSS(t, pid)

			const n = 1000
			var wg sync.WaitGroup
			run := func(f func()) {
				wg.Add(1)
				go func() { defer wg.Done(); f() }()
			}
			for i := range n {
				run(func() { // reset in the middle of a message
					c, err := net.Dial("tcp", addr)
					if err != nil {
						return
					}
					c.Write(bytes.Repeat([]byte{'r'}, 100+i))
					c.(*net.TCPConn).SetLinger(0)
					c.Close()
				})
				run(func() { // connect and vanish
					if c, err := net.Dial("tcp", addr); err == nil {
						c.Close()
					}
				})
			}
			var halfErr error
			var halfMu sync.Mutex
			for i := range 50 {
				run(func() { // half-close: every byte sent before the FIN comes back, then EOF
					msg := bytes.Repeat([]byte{byte('a' + i%26)}, 10000+i*37)
					c, err := net.Dial("tcp", addr)
					if err == nil {
						defer c.Close()
						c.SetDeadline(time.Now().Add(20 * time.Second))
						go func() {
							c.Write(msg)
							c.(*net.TCPConn).CloseWrite()
						}()
						var got []byte
						got, err = io.ReadAll(c)
						if err == nil && !bytes.Equal(got, msg) {
							err = fmt.Errorf("half-close: got %d bytes back, sent %d", len(got), len(msg))
						}
					}
					if err != nil {
						halfMu.Lock()
						halfErr = err
						halfMu.Unlock()
					}
				})
			}
			// Slowloris: a byte every 20 ms; it must still be echoed.
			slow, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range []byte("slow") {
				slow.Write([]byte{b})
				time.Sleep(20 * time.Millisecond)
			}
			slow.SetReadDeadline(time.Now().Add(10 * time.Second))
			got := make([]byte, 4)
			if _, err := io.ReadFull(slow, got); err != nil || string(got) != "slow" {
				t.Fatalf("slowloris: %q %v", got, err)
			}
			slow.Close()
			wg.Wait()
			// With the hostile wave over, a client that tries to write
			// 256 MiB and never reads: the server must stop reading when it
			// cannot write, not buffer the stream.
			quietRSS := exampletest.RSS(t, pid)
			var peakRSS int
			sent := exampletest.NeverReads(t, addr, make([]byte, 1<<20), 256<<20, func() { peakRSS = exampletest.RSS(t, pid) })
			if halfErr != nil {
				t.Fatal(halfErr)
			}
			if sent >= 64<<20 {
				t.Fatalf("the server took %d bytes from a client that never reads", sent)
			}
			if grown := peakRSS - quietRSS; grown > 64<<10 && !exampletest.Race { // a quarter of the stream

				t.Fatalf("server RSS grew by %d KiB under a client that never reads", grown)
			}
			exampletest.EchoOnce(t, addr, "still here")
			exampletest.WaitFDs(t, pid, baseFDs)
			t.Logf("%s: %d resets, %d vanished, 50 half-closes; the never-reading client got %d KiB in before the server stopped reading; RSS %d KiB at start, %d after the wave, %d with it stuck; fds %d -> %d",
				mode, n, n, sent>>10, baseRSS, quietRSS, peakRSS, baseFDs, exampletest.FDs(t, pid))
			exampletest.Stop(t, p)
		})
	}
}
