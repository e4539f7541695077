//go:build linux

package main

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/exampletest"
)

// TestSignalDuringConnectFlood: SIGTERM while clients connect as fast as
// they can (each connects, echoes a byte and closes) stops the server with
// status 0, in both modes and on the Go backend; it does not hang.
func TestSignalDuringConnectFlood(t *testing.T) {
	for _, tc := range []struct {
		name, args string
		refused    bool
	}{
		{"handler", "-addr 127.0.0.1:0 -mode handler", false},
		{"conn", "-addr 127.0.0.1:0 -mode conn", false},
		{"handler-go", "-addr 127.0.0.1:0 -mode handler", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := exampletest.Start
			if tc.refused {
				start = exampletest.StartRefused
			}
			p, addr := start(t, tc.args, nil)
			var echoed atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 1)
					for {
						select {
						case <-stop:
							return
						default:
						}
						c, err := net.Dial("tcp", addr)
						if err != nil {
							continue // refused once the server stopped listening
						}
						c.SetDeadline(time.Now().Add(10 * time.Second))
						if _, err := c.Write([]byte{'x'}); err == nil {
							if _, err := c.Read(buf); err == nil {
								echoed.Add(1)
							}
						}
						c.Close()
					}
				}()
			}
			for echoed.Load() < 200 { // the flood is on
				time.Sleep(time.Millisecond)
			}
			p.Process.Signal(syscall.SIGTERM)
			exited := make(chan error, 1)
			go func() { exited <- p.Wait() }()
			var err error
			select {
			case err = <-exited:
			case <-time.After(time.Minute):
				p.Process.Kill()
				err = <-exited
				t.Errorf("no exit a minute after SIGTERM (killed: %v)", err)
			}
			close(stop)
			wg.Wait()
			if err != nil {
				t.Fatalf("exit after SIGTERM during a connect flood: %v", err)
			}
			t.Logf("%d echoes", echoed.Load())
		})
	}
}
