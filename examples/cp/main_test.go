//go:build linux

package main

import (
	"bytes"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kasync-go/kasync/internal/exampletest"

	"golang.org/x/sys/unix"
)

// The test binary is cp itself when mainEnv is set: the tests run it as a
// separate process and check the copy, its mode, messages and exit status.
const mainEnv = "KASYNC_EXAMPLE_CP"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		exampletest.RefuseIfAsked()
		main()
	}
	os.Exit(m.Run())
}

// runCp runs the program; stderr goes to errOut if it is not nil.
func runCp(t *testing.T, errOut *os.File, args ...string) (stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	// No race-detector pause at exit: it would add a second per run.
	cmd.Env = append(os.Environ(), mainEnv+"=1", "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if errOut != nil {
		cmd.Stderr = errOut
	}
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return buf.String(), code
}

func randomFile(t *testing.T, name string, size int, mode os.FileMode) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.New(rand.NewSource(int64(size))).Read(data)
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestCpExactWithMode(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		size int
		mode os.FileMode
	}{{0, 0o644}, {1, 0o600}, {5<<20 + 17, 0o640}, {100_000, 0o755 | os.ModeSetuid}, {3000, 0o1777 &^ 0o022}} {
		src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
		data := randomFile(t, src, c.size, c.mode)
		os.WriteFile(dst, make([]byte, 2*c.size+10), 0o666) // an older, longer dst
		if out, code := runCp(t, nil, src, dst); code != 0 || out != "" {
			t.Fatalf("cp of %d bytes: exit %d: %s", c.size, code, out)
		}
		got, err := os.ReadFile(dst)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("copy of %d bytes holds %d bytes (%v)", c.size, len(got), err)
		}
		srcSt, _ := os.Stat(src)
		dstSt, _ := os.Stat(dst)
		if srcSt.Mode() != dstSt.Mode() {
			t.Fatalf("mode %v copied as %v", srcSt.Mode(), dstSt.Mode())
		}
		os.Remove(dst)
	}
}

func TestCpIntoDirectory(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "file.txt")
	data := randomFile(t, src, 12345, 0o644)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	if out, code := runCp(t, nil, src, sub); code != 0 {
		t.Fatalf("cp into a directory: exit %d: %s", code, out)
	}
	if got, _ := os.ReadFile(filepath.Join(sub, "file.txt")); !bytes.Equal(got, data) {
		t.Fatal("copy into a directory differs")
	}
}

func TestCpErrors(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	randomFile(t, src, 10, 0o644)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{src}, 2, "usage: cp SRC DST"},
		{[]string{filepath.Join(dir, "missing"), filepath.Join(dir, "x")}, 1, "no such file or directory"},
		{[]string{src, src}, 1, "are the same file"},
		{[]string{dir, filepath.Join(dir, "y")}, 1, "is a directory"},
		{[]string{src, filepath.Join(dir, "no", "such", "dir")}, 1, "no such file or directory"},
	} {
		out, code := runCp(t, nil, c.args...)
		if code != c.code || !strings.Contains(out, c.msg) {
			t.Errorf("cp %q: exit %d, %q; want exit %d and %q", c.args, code, out, c.code, c.msg)
		}
	}
	if got, _ := os.ReadFile(src); len(got) != 10 {
		t.Fatal("cp onto itself damaged the file")
	}
}

// openPTY returns a pseudo-terminal's master and slave ends.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("open pts: %v", err)
	}
	return m, s
}

// TestCpProgress: a bar for a file over 64 MiB on a terminal, never on a pipe.
func TestCpProgress(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "big")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("start"), 0)
	f.WriteAt([]byte("end"), progressMin+(1<<20)) // sparse: quick to make and read
	f.Close()

	out, code := runCp(t, nil, src, filepath.Join(dir, "to-pipe"))
	if code != 0 || out != "" {
		t.Fatalf("cp with stderr on a pipe: exit %d, %q (want no progress)", code, out)
	}

	master, slave := openPTY(t)
	defer master.Close()
	screen := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, master) // ends with EIO once the slave is closed everywhere
		screen <- b.String()
	}()
	_, code = runCp(t, slave, src, filepath.Join(dir, "to-tty"))
	slave.Close()
	var got string
	select {
	case got = <-screen:
	case <-time.After(10 * time.Second):
		t.Fatal("no end of terminal output")
	}
	if code != 0 || !strings.Contains(got, "100%") || !strings.Contains(got, "65.0 MiB") {
		t.Fatalf("cp with stderr on a terminal: exit %d, %q", code, got)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(filepath.Join(dir, "to-tty"))
	if !bytes.Equal(a, b) {
		t.Fatal("copy differs")
	}
}

// TestFallback: where io_uring is refused, cp works on Go's os (quietly).
func TestFallback(t *testing.T) {
	t.Setenv(exampletest.RefuseEnv, "1")
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	data := bytes.Repeat([]byte("kasync "), 100000)
	if err := os.WriteFile(src, data, 0o640); err != nil {
		t.Fatal(err)
	}
	stderr, code := runCp(t, nil, src, dst)
	got, err := os.ReadFile(dst)
	if code != 0 || err != nil || !bytes.Equal(got, data) {
		t.Fatalf("code %d, %v, %d bytes copied; stderr %q", code, err, len(got), stderr)
	}
}
