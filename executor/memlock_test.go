//go:build linux

package executor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/unpriv"
	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// The memlock tests run the test binary again as an unprivileged user (root
// has CAP_IPC_LOCK, which exempts it) with RLIMIT_MEMLOCK set, at
// GOMAXPROCS 16. The uid is one of the run's own rather than nobody's: the
// limit is per user, and other test binaries running at the same time as
// nobody would otherwise share it.

const (
	memlockLimitEnv = "KASYNC_MEMLOCK_LIMIT" // bytes
	memlockUIDEnv   = "KASYNC_MEMLOCK_UID"
	memlockDirEnv   = "KASYNC_MEMLOCK_DIR"  // for Unix sockets, writable by the uid
	memlockHoldEnv  = "KASYNC_MEMLOCK_HOLD" // say "ready", then hold everything until stdin closes
)

func init() {
	childFuncs["memlockServe"] = memlockServeChild
	childFuncs["memlockStrict"] = memlockStrictChild
}

// memlockCmd prepares a child running name as uid with limit bytes locked.
func memlockCmd(t *testing.T, name string, uid int, limit uint64, dir string, extra ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name, "GOMAXPROCS=16", "GORACE=atexit_sleep_ms=0",
		memlockLimitEnv+"="+strconv.FormatUint(limit, 10), memlockUIDEnv+"="+strconv.Itoa(uid), memlockDirEnv+"="+dir)
	cmd.Env = append(cmd.Env, extra...)
	return cmd
}

func memlockDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "kasync-memlock")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func skipUnlessUnpriv(t *testing.T) {
	if ok, why := unpriv.Possible(); !ok {
		t.Skip("cannot run as an unprivileged user: " + why)
	}
	var rl unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl)
	if rl.Max < 8<<20 {
		t.Skipf("the hard RLIMIT_MEMLOCK is %d bytes, below the 8 MiB the test sets", rl.Max)
	}
}

// TestMemlockLimits: under each limit every Serve and Listen works, on
// io_uring where it fits and on the Go backend where not, each checked with
// an echo round trip; "ulimit -l 0" included.
func TestMemlockLimits(t *testing.T) {
	skipUnlessUnpriv(t)
	dir := memlockDir(t)
	for i, limit := range []uint64{8 << 20, 1 << 20, 64 << 10, 0} {
		t.Run(ring.FormatBytes(limit), func(t *testing.T) {
			out, err := memlockCmd(t, "memlockServe", unpriv.UID(63000+10*i), limit, dir).CombinedOutput()
			t.Logf("%s", out)
			if err != nil {
				t.Fatalf("child: %v", err)
			}
			if limit == 8<<20 && !strings.Contains(string(out), "New: backend io_uring") {
				t.Errorf("8 MiB: New did not run on io_uring")
			}
		})
	}
}

// TestMemlockTwoProcesses: the limit is the user's. One process holds its
// executor and servers while a second of the same user starts: the second
// cannot see the first's rings, so the kernel refuses where its sizing
// expected room, and it must shrink or fall back.
func TestMemlockTwoProcesses(t *testing.T) {
	skipUnlessUnpriv(t)
	dir := memlockDir(t)
	for i, limit := range []uint64{8 << 20, 1 << 20, 64 << 10} {
		t.Run(ring.FormatBytes(limit), func(t *testing.T) {
			uid := unpriv.UID(64000 + 10*i)
			first := memlockCmd(t, "memlockServe", uid, limit, dir, memlockHoldEnv+"=1")
			stdin, _ := first.StdinPipe()
			stdout, _ := first.StdoutPipe()
			var firstErr strings.Builder
			first.Stderr = &firstErr
			if err := first.Start(); err != nil {
				t.Fatal(err)
			}
			rd := bufio.NewReader(stdout)
			var log strings.Builder
			for {
				line, err := rd.ReadString('\n')
				log.WriteString(line)
				if err != nil {
					stdin.Close()
					first.Wait()
					t.Fatalf("first child ended before it was ready: %v\n%s%s", err, log.String(), firstErr.String())
				}
				if strings.TrimSpace(line) == "ready" {
					break
				}
			}
			out, err := memlockCmd(t, "memlockServe", uid, limit, dir).CombinedOutput()
			stdin.Close()
			rest, _ := io.ReadAll(rd)
			log.Write(rest)
			werr := first.Wait()
			t.Logf("first:\n%s%s\nsecond, while the first held its memory:\n%s", log.String(), firstErr.String(), out)
			if werr != nil || err != nil {
				t.Fatalf("first: %v, second: %v", werr, err)
			}
		})
	}
}

// TestMemlockStrict: with WithStrict, a refusal is an error that names the
// limit and how to raise it, from New (ulimit -l 0) and from Serve (the
// limit lowered under what the Executor already locks).
func TestMemlockStrict(t *testing.T) {
	skipUnlessUnpriv(t)
	out, err := memlockCmd(t, "memlockStrict", unpriv.UID(65000), 8<<20, memlockDir(t)).CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
}

// memlockDrop makes the child the unprivileged user the test asked for.
func memlockDrop() error {
	limit, _ := strconv.ParseUint(os.Getenv(memlockLimitEnv), 10, 64)
	uid, _ := strconv.Atoi(os.Getenv(memlockUIDEnv))
	if err := unpriv.Drop(uid, limit); err != nil {
		return err
	}
	if _, charged := ring.MemlockLimit(); !charged {
		return errors.New("still exempt from RLIMIT_MEMLOCK after dropping privileges")
	}
	return nil
}

type memlockEcho struct{}

func (memlockEcho) OnOpen(*HConn) {}
func (memlockEcho) OnData(c *HConn, b []byte) int {
	c.Write(b)
	return len(b)
}
func (memlockEcho) OnClose(*HConn, error) {}

// echoOnce dials addr and checks one round trip.
func echoOnce(network, addr string) error {
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := []byte("memlock round trip")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != string(msg) {
		return fmt.Errorf("echo: got %q", got)
	}
	return nil
}

func memlockServeChild() error {
	if err := memlockDrop(); err != nil {
		return err
	}
	var warnings atomic.Int32
	e, err := New(WithLogger(funcLogger(func(line string) {
		if strings.HasPrefix(line, "WARN") {
			warnings.Add(1)
			fmt.Println(line)
		}
	})))
	if err != nil {
		return fmt.Errorf("New: %w", err)
	}
	defer e.Close()
	st := e.Stats()
	fmt.Printf("New: backend %s, %d loops, %d bytes locked; %s\n", st.Backend, st.Loops, st.Memlocked, st.BackendReason)
	if st.Backend == BackendGo && warnings.Load() != 1 {
		return fmt.Errorf("New fell back with %d warnings, want 1", warnings.Load())
	}
	sock := filepath.Join(os.Getenv(memlockDirEnv), fmt.Sprintf("s%d.sock", os.Getpid()))
	var servers []*Server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for _, na := range [][2]string{{"tcp", "127.0.0.1:0"}, {"unix", sock}, {"tcp", "127.0.0.1:0"}} {
		before := warnings.Load()
		s, err := e.Serve(na[0], na[1], memlockEcho{})
		if err != nil {
			return fmt.Errorf("Serve %s: %w", na[0], err)
		}
		servers = append(servers, s)
		if err := echoOnce(na[0], s.Addr().String()); err != nil {
			return fmt.Errorf("Serve %s: %w", na[0], err)
		}
		ss := s.Stats()
		fmt.Printf("Serve %s: backend %s, %d loops; %s\n", na[0], ss.Backend, ss.Loops, ss.BackendReason)
		if ss.Backend == "" || (ss.Backend == BackendGo && st.Backend == BackendIOURing && warnings.Load() != before+1) {
			return fmt.Errorf("Serve %s: backend %q, %d warnings (want one for a server's fallback)", na[0], ss.Backend, warnings.Load()-before)
		}
	}
	ln, err := e.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("Listen: %w", err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	if err := echoOnce("tcp", ln.Addr().String()); err != nil {
		return fmt.Errorf("Listen: %w", err)
	}
	c, err := e.Dial(context.Background(), "tcp", servers[0].Addr().String())
	if err != nil {
		return fmt.Errorf("Dial: %w", err)
	}
	c.Write([]byte("x"))
	b := make([]byte, 1)
	_, err = io.ReadFull(c, b)
	c.Close()
	if err != nil {
		return fmt.Errorf("Dial, read: %w", err)
	}
	st = e.Stats()
	fmt.Printf("Listen and Dial: ok; %d bytes locked in all\n", st.Memlocked)
	if os.Getenv(memlockHoldEnv) != "" {
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
	}
	return nil
}

func memlockStrictChild() error {
	if err := memlockDrop(); err != nil {
		return err
	}
	says := func(msg string) error {
		for _, want := range []string{"RLIMIT_MEMLOCK", "ulimit -l", "/etc/security/limits.conf", "LimitMEMLOCK", "--ulimit memlock"} {
			if !strings.Contains(msg, want) {
				return fmt.Errorf("%s: does not say %q", msg, want)
			}
		}
		return nil
	}
	actionable := func(err error) error {
		if !errors.Is(err, ring.ErrUnavailable) {
			return fmt.Errorf("%v: does not wrap ring.ErrUnavailable", err)
		}
		return says(err.Error())
	}
	// Serve: an Executor that fits, then the limit lowered to what it holds.
	e, err := New(WithStrict(), WithLoops(2))
	if err != nil {
		return fmt.Errorf("New under 8 MiB: %w", err)
	}
	defer e.Close()
	var warnings atomic.Int32
	e2, err := New(WithLoops(1), WithLogger(funcLogger(func(line string) {
		if strings.HasPrefix(line, "WARN") {
			warnings.Add(1)
		}
	})))
	if err != nil {
		return err
	}
	defer e2.Close()
	locked := uint64(e.Stats().Memlocked)
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: locked, Max: 8 << 20}); err != nil {
		return err
	}
	_, err = e.Serve("tcp", "127.0.0.1:0", memlockEcho{})
	if err == nil {
		return errors.New("strict Serve over the limit succeeded")
	}
	if err := actionable(err); err != nil {
		return fmt.Errorf("strict Serve: %w", err)
	}
	fmt.Println("strict Serve:", err)
	// The same without WithStrict: that server runs on Go's net.
	s, err := e2.Serve("tcp", "127.0.0.1:0", memlockEcho{})
	if err != nil {
		return fmt.Errorf("Serve over the limit: %w", err)
	}
	defer s.Close()
	if err := echoOnce("tcp", s.Addr().String()); err != nil {
		return err
	}
	ss := s.Stats()
	if e2.Backend() != BackendIOURing || (ss.Backend != BackendGo || warnings.Load() != 1 || says(ss.BackendReason) != nil) {
		return fmt.Errorf("Serve over the limit: backend %s, %d warnings, reason %q", ss.Backend, warnings.Load(), ss.BackendReason)
	}
	fmt.Printf("Serve over the limit: backend %s; %s\n", ss.Backend, ss.BackendReason)
	// New: ulimit -l 0.
	unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: 0, Max: 8 << 20})
	_, err = New(WithStrict())
	if err == nil {
		return errors.New("strict New under ulimit -l 0 succeeded")
	}
	if err := actionable(err); err != nil {
		return fmt.Errorf("strict New: %w", err)
	}
	fmt.Println("strict New:", err)
	return nil
}
