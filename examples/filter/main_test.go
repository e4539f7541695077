package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The test binary doubles as the command: with runMainEnv set it runs main
// with the arguments in argsEnv.
const (
	runMainEnv = "KASYNC_EXAMPLE_RUN_MAIN"
	argsEnv    = "KASYNC_EXAMPLE_ARGS"
)

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Args = append([]string{"filter"}, strings.Fields(os.Getenv(argsEnv))...)
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// output collects what the command prints after its first line.
var output syncBuffer

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// stop sends SIGTERM and expects exit status 0.
func stop(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

// TestFilter: clients from 127.0.0.1 get echo, clients from 127.0.0.2 are
// dropped and counted; SIGTERM exits 0.
func TestFilter(t *testing.T) {
	cmd, addr := startCommand(t, "-addr 127.0.0.1:0 -allow 127.0.0.1/32")
	echoOnce(t, addr, "allowed")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("let me in"))
	if n, err := c.Read(make([]byte, 10)); err == nil {
		t.Fatalf("dropped client read %d bytes", n)
	}
	c.Close()
	echoOnce(t, addr, "allowed again") // the dropped one was seen by now
	stop(t, cmd)
	if !strings.Contains(output.String(), "dropped 1 connections") {
		t.Fatalf("output: %q", output.String())
	}
}

func TestParsePrefixes(t *testing.T) {
	ps, err := parsePrefixes("127.0.0.1/8, ::1/128")
	if err != nil || len(ps) != 2 || ps[0].String() != "127.0.0.0/8" {
		t.Fatalf("%v %v", ps, err)
	}
	if _, err := parsePrefixes("nonsense"); err == nil {
		t.Fatal("parsed nonsense")
	}
}

// startCommand runs the test binary as the command with args and returns
// the address it prints.
func startCommand(t *testing.T, args string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), runMainEnv+"=1", argsEnv+"="+args)
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
	go io.Copy(&output, rd)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		t.Fatalf("command said %q, %v", line, err)
	}
	return cmd, addr
}

func echoOnce(t *testing.T, addr, msg string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOn(t, c, msg)
}

func echoOn(t *testing.T, c net.Conn, msg string) {
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
