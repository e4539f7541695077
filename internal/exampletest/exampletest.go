//go:build linux

// Package exampletest runs an example program from its own test binary: the
// binary doubles as the command, so a test can start it, talk to it over the
// network and stop it with a signal, as a user would.
package exampletest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/seccomp"

	"go.uber.org/goleak"
)

const (
	runMainEnv = "KASYNC_EXAMPLE_RUN_MAIN"
	argsEnv    = "KASYNC_EXAMPLE_ARGS"
	refuseEnv  = "KASYNC_EXAMPLE_REFUSE_IO_URING"
)

// Main is an example's TestMain: started by Start, the binary runs the
// program's main with the arguments given there; otherwise it runs the tests
// and fails them if a goroutine is left behind.
func Main(m *testing.M, name string, main func()) {
	if os.Getenv(runMainEnv) == "1" {
		RefuseIfAsked()
		os.Args = append([]string{name}, strings.Fields(os.Getenv(argsEnv))...)
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// Proc is a started program.
type Proc struct {
	*exec.Cmd
	copied chan struct{} // closed when all of its output went to rest
}

// Wait waits for the program to exit and for its output to be copied.
func (p *Proc) Wait() error {
	<-p.copied
	return p.Cmd.Wait()
}

// Start runs the program with args (space-separated) and returns the address
// from the "listening on ADDR" line it prints first. What it prints after
// that goes to rest, if not nil. The program is killed when the test ends.
func Start(t *testing.T, args string, rest io.Writer) (*Proc, string) {
	t.Helper()
	return start(t, args, rest, false)
}

// StartRefused is Start in a process where the kernel refuses io_uring, as
// a container's seccomp profile does: the program must fall back to Go's
// runtime and work all the same.
func StartRefused(t *testing.T, args string, rest io.Writer) (*Proc, string) {
	t.Helper()
	return start(t, args, rest, true)
}

func start(t *testing.T, args string, rest io.Writer, refuse bool) (*Proc, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), runMainEnv+"=1", argsEnv+"="+args, "GORACE=atexit_sleep_ms=0")
	if refuse {
		cmd.Env = append(cmd.Env, refuseEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	rd := bufio.NewReader(out)
	line, err := rd.ReadString('\n')
	if rest == nil {
		rest = io.Discard
	}
	p := &Proc{Cmd: cmd, copied: make(chan struct{})}
	go func() {
		io.Copy(rest, rd) // until the program exits
		close(p.copied)
	}()
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		t.Fatalf("command said %q, %v", line, err)
	}
	return p, addr
}

// Stop sends SIGTERM and expects the program to exit with status 0.
func Stop(t *testing.T, p *Proc) {
	t.Helper()
	p.Process.Signal(syscall.SIGTERM)
	if err := p.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// EchoOnce dials addr, sends msg and expects it back.
func EchoOnce(t *testing.T, addr, msg string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	EchoOn(t, c, msg)
}

// EchoOn sends msg on c and expects it back within 10 seconds.
func EchoOn(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echoed %q, %v", got, err)
	}
}

// RunRefused runs the program with args to its end in a process where the
// kernel refuses io_uring, and returns what it printed and how it exited.
func RunRefused(args string) (string, error) {
	var out strings.Builder
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), runMainEnv+"=1", argsEnv+"="+args, refuseEnv+"=1", "GORACE=atexit_sleep_ms=0")
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// FDs counts the descriptors open in process pid.
func FDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// RSS returns process pid's resident set in KiB.
func RSS(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(rest)[0])
			return kb
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// WaitFDs waits (bounded) for pid's descriptor count to come back to want.
func WaitFDs(t *testing.T, pid, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	got := FDs(t, pid)
	for got > want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		got = FDs(t, pid)
	}
	if got > want {
		t.Fatalf("server has %d descriptors, %d before the clients", got, want)
	}
}

// NeverReads connects to addr and writes chunk over and over, up to limit
// bytes, without reading anything back, until the server stops taking bytes
// (a 3-second write deadline ends it). While the connection is stuck it
// calls stuck (to look at the server), then resets the connection. It
// returns how many bytes the server took.
func NeverReads(t *testing.T, addr string, chunk []byte, limit int, stuck func()) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetWriteDeadline(time.Now().Add(3 * time.Second))
	sent := 0
	for sent < limit {
		m, err := c.Write(chunk)
		sent += m
		if err != nil {
			break
		}
	}
	stuck()
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	return sent
}

// RefuseEnv, set to 1 in a program's environment, makes RefuseIfAsked
// refuse io_uring there.
const RefuseEnv = refuseEnv

// RefuseIfAsked refuses io_uring in this process if RefuseEnv is set, for
// programs whose tests run them with a harness of their own.
func RefuseIfAsked() {
	if os.Getenv(refuseEnv) != "1" {
		return
	}
	if err := seccomp.RefuseIOUring(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
}
