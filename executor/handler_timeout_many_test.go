//go:build linux

package executor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

func init() { childFuncs["timeoutClients"] = timeoutClients }

// Many-connection timeouts: half of manyTimeoutConns clients keep their
// connections busy, the other half say nothing.
const (
	manyTimeoutConns = 10_000
	manyTimeout      = 4 * time.Second // room for the Go backend under -race, 20,000 goroutines
)

// TestServe10kConnsTimeouts holds 10,000 connections with a read timeout
// on one loop: the 5,000 that send a byte every third of the timeout, for
// three timeouts, stay open; the 5,000 silent ones are all closed by their
// timeout. The clients run in a child process, so that each process stays
// within the descriptor limit.
func TestServe10kConnsTimeouts(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	forEachBackend(t, func(t *testing.T, e *Executor) {
		var mu sync.Mutex
		bad := 0
		var early []string
		h := &hFuncs{data: func(c *HConn, b []byte) int {
			c.SetContext(time.Now())
			c.Write(b)
			return len(b)
		}, close: func(c *HConn, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != ErrReadTimeout {
				bad++
			}
			if last, ok := c.Context().(time.Time); ok && len(early) < 5 && time.Since(last) < manyTimeout {
				early = append(early, fmt.Sprintf("%v after its last byte (%v)", time.Since(last), err))
			}
		}}
		s := hServe(t, e, h, ServeLoops(1), ServeReadTimeout(manyTimeout))
		line := startChild(t, "timeoutClients", "KASYNC_TIMEOUT_ADDR="+s.Addr().String())
		if line != "ok" {
			mu.Lock()
			nbad, e5 := bad, append([]string(nil), early...)
			mu.Unlock()
			t.Fatalf("clients: %s; server: %d closed for another reason, stats %+v, early closes %q", line, nbad, s.Stats(), e5)
		}
		st := s.Stats()
		t.Logf("stats %+v", st)
		mu.Lock()
		defer mu.Unlock()
		if bad != 0 || st.Timeouts != manyTimeoutConns/2 || st.Conns != manyTimeoutConns/2 {
			t.Fatalf("%d closed for another reason; %d timeouts and %d open, want %d each",
				bad, st.Timeouts, st.Conns, manyTimeoutConns/2)
		}
	})
}

// timeoutClients is TestServe10kConnsTimeouts's child: it dials, pings
// with the even connections, checks that the odd ones were closed, prints
// "ok" (or what went wrong) and holds its connections until its standard
// input closes.
func timeoutClients() error {
	addr := os.Getenv("KASYNC_TIMEOUT_ADDR")
	conns := make([]net.Conn, manyTimeoutConns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	ping := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(manyTimeout / 2))
		buf := []byte{'p'}
		if _, err := c.Write(buf); err != nil {
			return err
		}
		_, err := io.ReadFull(c, buf)
		return err
	}
	var mu sync.Mutex
	var active []net.Conn
	var failed error
	var longest time.Duration // the longest round of pings
	done := make(chan struct{})
	pinged := make(chan struct{})
	go func() { // every third of the timeout, each busy connection sends
		defer close(pinged)
		tick := time.NewTicker(manyTimeout / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			mu.Lock()
			busy := active
			mu.Unlock()
			t0 := time.Now()
			// All the writes, then all the echoes: no round trip per conn.
			buf := []byte{'p'}
			for i, c := range busy {
				c.SetDeadline(time.Now().Add(manyTimeout / 2))
				if _, err := c.Write(buf); err != nil && failed == nil {
					failed = fmt.Errorf("busy conn %d of %d: %v (round %v, longest before %v)", i, len(busy), err, time.Since(t0), longest)
				}
			}
			for i, c := range busy {
				if _, err := io.ReadFull(c, buf); err != nil && failed == nil {
					failed = fmt.Errorf("busy conn %d of %d: %v (round %v, longest before %v)", i, len(busy), err, time.Since(t0), longest)
				}
			}
			longest = max(longest, time.Since(t0))
		}
	}()
	start := time.Now()
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			close(done)
			<-pinged
			return fmt.Errorf("dial %d: %v", i, err)
		}
		conns[i] = c
		if i%2 == 0 {
			if err := ping(c); err != nil {
				close(done)
				<-pinged
				return fmt.Errorf("first ping %d: %v", i, err)
			}
			mu.Lock()
			active = append(active, c)
			mu.Unlock()
		}
	}
	dialed := time.Since(start)
	time.Sleep(3*manyTimeout - dialed)
	close(done)
	<-pinged
	result := "ok"
	if failed != nil {
		result = failed.Error()
	}
	// The silent connections were closed by the server by now.
	for i := 1; i < len(conns) && result == "ok"; i += 2 {
		c := conns[i]
		c.SetReadDeadline(time.Now().Add(manyTimeout))
		if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
			result = "silent conn " + strconv.Itoa(i) + " still open"
		}
	}
	fmt.Println(result)
	holdUntilStdinCloses()
	return nil
}
