package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
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
		os.Args = append([]string{"echo"}, strings.Fields(os.Getenv(argsEnv))...)
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestModes runs every registered mode in process: echo, then stop.
func TestModes(t *testing.T) {
	for name, serve := range modes {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			addrs := make(chan net.Addr, 1)
			done := make(chan error, 1)
			go func() { done <- serve(ctx, "127.0.0.1:0", 2, func(a net.Addr) { addrs <- a }) }()
			var addr net.Addr
			select {
			case addr = <-addrs:
			case err := <-done:
				t.Fatal(err)
			}
			for range 3 {
				echoOnce(t, addr.String(), "hello "+name)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSignal runs the command, echoes through it, and stops it with
// SIGTERM: it exits 0.
func TestSignal(t *testing.T) {
	for _, args := range []string{"-addr 127.0.0.1:0", "-addr 127.0.0.1:0 -loops 1 -mode conn"} {
		cmd, addr := startCommand(t, args)
		echoOnce(t, addr, "over the command")
		open, err := net.Dial("tcp", addr) // left open: the grace period ends it
		if err != nil {
			t.Fatal(err)
		}
		echoOn(t, open, "still open")
		go func() { time.Sleep(100 * time.Millisecond); open.Close() }()
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("echo %s: exit: %v", args, err)
		}
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
	line, err := bufio.NewReader(out).ReadString('\n')
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
