//go:build linux

package executor

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAcceptEMFILE: when the process runs out of descriptors, Accept reports
// EMFILE (as a temporary error, so servers such as http.Serve back off and
// retry), and the listener accepts again once descriptors are free.
func TestAcceptEMFILE(t *testing.T) {
	e := newTestExecutor(t, WithLoops(1))
	ln, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	// Leave room for a few descriptors, then use them all up.
	lim := unix.Rlimit{Cur: uint64(fdCount(t) + 8), Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	var fillers []int
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		fillers = append(fillers, fd)
	}
	closeFillers := func() {
		for _, fd := range fillers {
			unix.Close(fd)
		}
		fillers = nil
	}
	defer closeFillers()

	// The client's socket needs a descriptor too: dial from a raw socket
	// made before the table filled up would do, but freeing one is simpler.
	unix.Close(fillers[len(fillers)-1])
	fillers = fillers[:len(fillers)-1]
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		errc <- err
	}()
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("Accept neither failed nor succeeded with no descriptor left")
	}
	var ne net.Error
	if !errors.Is(err, syscall.EMFILE) || !errors.As(err, &ne) {
		t.Fatalf("Accept with no descriptor left: %v", err)
	}

	closeFillers()
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept after descriptors were freed: %v", err)
	}
	c.Close()
	c2, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c3, err := ln.Accept()
	if err != nil {
		t.Fatalf("a later Accept: %v", err)
	}
	c3.Close()
}
