//go:build linux

package executor

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// proxy accepts on ln and copies each connection to and from a new
// connection to upstream with io.Copy, which splices between Conns.
func proxy(t testing.TB, e *Executor, ln net.Listener, upstream string) {
	_, err := e.Spawn(func(ctx context.Context) error {
		for {
			c, err := ln.Accept()
			if err != nil {
				return nil
			}
			e.Spawn(func(ctx context.Context) error {
				defer c.Close()
				u, err := e.Dial(ctx, "tcp", upstream)
				if err != nil {
					return err
				}
				defer u.Close()
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					io.Copy(u, c)
					u.(*Conn).CloseWrite()
				}()
				io.Copy(c, u)
				c.(*Conn).CloseWrite()
				wg.Wait()
				return nil
			})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// spliceEcho echoes each connection to itself with io.Copy (splice).
func spliceEcho(t testing.TB, e *Executor, ln net.Listener) {
	_, err := e.Spawn(func(ctx context.Context) error {
		for {
			c, err := ln.Accept()
			if err != nil {
				return nil
			}
			e.Spawn(func(ctx context.Context) error {
				defer c.Close()
				io.Copy(c, c)
				return c.(*Conn).CloseWrite()
			})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNetSpliceProxy sends 1 GiB (256 MiB under the race detector, 64 MiB
// with -short) through a proxy to an echo server and back, checksummed at
// both ends; every hop is io.Copy between Conns, moved by SPLICE.
func TestNetSpliceProxy(t *testing.T) {
	size := int64(1 << 30)
	switch {
	case testing.Short():
		size = 64 << 20
	case raceEnabled:
		size = 256 << 20
	}
	e := newTestExecutor(t, WithLoops(2))
	echoLn, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echoLn.Close()
	spliceEcho(t, e, echoLn)
	proxyLn, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer proxyLn.Close()
	proxy(t, e, proxyLn, echoLn.Addr().String())

	c, err := e.Dial(context.Background(), "tcp", proxyLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	sent := make(chan uint32, 1)
	go func() {
		// One random MiB, stamped with its offset each time, so that a lost,
		// repeated or reordered chunk changes the checksum.
		buf := make([]byte, 1<<20)
		rand.NewChaCha8([32]byte{1}).Read(buf)
		crc := uint32(0)
		for off := int64(0); off < size; off += int64(len(buf)) {
			binary.LittleEndian.PutUint64(buf, uint64(off))
			binary.LittleEndian.PutUint64(buf[len(buf)-8:], ^uint64(off))
			crc = crc32.Update(crc, crc32.IEEETable, buf)
			if _, err := c.Write(buf); err != nil {
				t.Error(err)
				break
			}
		}
		c.(*Conn).CloseWrite()
		sent <- crc
	}()
	crc := crc32.NewIEEE()
	n, err := io.Copy(crc, c)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if want := <-sent; n != size || crc.Sum32() != want {
		t.Fatalf("got %d bytes, crc %08x; sent %d, crc %08x", n, crc.Sum32(), size, want)
	}
	st := e.Stats()
	t.Logf("%d MiB there and back through proxy and echo in %v (%.0f MiB/s); spliced %d MiB",
		size>>20, elapsed, float64(size>>20)/elapsed.Seconds(), st.SplicedBytes>>20)
	if st.SplicedBytes < 3*uint64(size) { // proxy both ways, and the echo
		t.Fatalf("spliced %d bytes, want at least %d", st.SplicedBytes, 3*size)
	}
}

func TestNetSpliceFile(t *testing.T) {
	e := newTestExecutor(t)
	_, c, s := listenAndDial(t, e, "tcp", "127.0.0.1:0")
	want := make([]byte, 8<<20+123)
	rand.NewChaCha8([32]byte{2}).Read(want)
	path := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Seek(100, io.SeekStart) // from the file's position
	before := e.Stats().SplicedBytes

	// File to Conn: io.Copy goes through os.File's WriteTo to Conn.ReadFrom.
	go func() {
		if n, err := io.Copy(c, f); err != nil || n != int64(len(want)-100) {
			t.Errorf("io.Copy(conn, file) = %d, %v", n, err)
		}
		c.(*Conn).CloseWrite()
	}()
	// Conn to file: Conn.WriteTo.
	out, err := os.Create(filepath.Join(t.TempDir(), "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	out.Write([]byte("head:"))
	if n, err := io.Copy(out, s); err != nil || n != int64(len(want)-100) {
		t.Fatalf("io.Copy(file, conn) = %d, %v", n, err)
	}
	got, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append([]byte("head:"), want[100:]...)) {
		t.Fatalf("file holds %d bytes, differing", len(got))
	}
	if d := e.Stats().SplicedBytes - before; d != 2*uint64(len(want)-100) {
		t.Fatalf("spliced %d bytes, want %d", d, 2*(len(want)-100))
	}
}

// TestNetSpliceLimitedAndBuffered: a LimitedReader is honoured, and data
// already received into the provided buffers goes out before spliced data.
func TestNetSpliceLimitedAndBuffered(t *testing.T) {
	e := newTestExecutor(t)
	_, a, b := listenAndDial(t, e, "tcp", "127.0.0.1:0")
	_, c, d := listenAndDial(t, e, "tcp", "127.0.0.1:0")
	a.Write([]byte("first"))
	if _, err := io.ReadFull(b, make([]byte, 2)); err != nil { // arms b's receive; "rst" stays queued
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	a.Write([]byte("-second-third"))
	a.(*Conn).CloseWrite()
	n, err := io.CopyN(c, b, 10) // "rst-second"
	if err != nil || n != 10 {
		t.Fatalf("CopyN: %d, %v", n, err)
	}
	n, err = io.Copy(c, b) // "-third"
	if err != nil || n != 6 {
		t.Fatalf("Copy: %d, %v", n, err)
	}
	c.(*Conn).CloseWrite()
	got, err := io.ReadAll(d)
	if err != nil || string(got) != "rst-second-third" {
		t.Fatalf("read %q, %v", got, err)
	}
	// b still writes, and reads EOF, after the splice stopped its receive.
	b.Write([]byte("back"))
	got = make([]byte, 4)
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "back" {
		t.Fatalf("read %q, %v", got, err)
	}
	if n, err := b.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the splice: %d, %v", n, err)
	}
}

// TestNetSpliceIdleHoldsNoThreads: connections idle in io.Copy wait in a
// POLL, not in an io-wq worker blocked in SPLICE.
func TestNetSpliceIdleHoldsNoThreads(t *testing.T) {
	e := newTestExecutor(t)
	ln, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	spliceEcho(t, e, ln)
	threads0 := netThreads(t)
	const N = 200
	var conns []net.Conn
	for range N {
		c, err := e.Dial(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.Write([]byte("hi"))
		if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if th := netThreads(t); th > threads0+N/4 {
		t.Fatalf("%d threads with %d idle splicing connections, %d before", th, N, threads0)
	}
	for _, c := range conns {
		c.Close()
	}
}

// netThreads counts the process's threads (io-wq workers among them).
func netThreads(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
