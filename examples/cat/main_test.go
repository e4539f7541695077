//go:build linux

package main

import (
	"bytes"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kasync-go/kasync/internal/exampletest"
)

// The test binary is cat itself when mainEnv is set: the tests run it as a
// separate process and check its output and exit status.
const mainEnv = "KASYNC_EXAMPLE_CAT"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		exampletest.RefuseIfAsked()
		main()
	}
	os.Exit(m.Run())
}

type result struct {
	stdout, stderr string
	code           int
}

// runCat runs the program with args; stdin is a string, and stdout goes to
// out if it is not nil.
func runCat(t *testing.T, stdin string, out *os.File, args ...string) result {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	// No race-detector pause at exit: it would add a second per run.
	cmd.Env = append(os.Environ(), mainEnv+"=1", "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if out != nil {
		cmd.Stdout = out
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCatFiles(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a", []byte("first\n"))
	b := write(t, dir, "b", []byte("second\n"))
	empty := write(t, dir, "empty", nil)
	got := runCat(t, "", nil, a, empty, b)
	if got != (result{"first\nsecond\n", "", 0}) {
		t.Fatalf("cat a empty b: %+v", got)
	}
}

func TestCatMissingGoesOn(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a", []byte("A"))
	b := write(t, dir, "b", []byte("B"))
	missing := filepath.Join(dir, "missing")
	got := runCat(t, "", nil, a, missing, dir, b)
	want := result{"AB", "cat: " + missing + ": no such file or directory\ncat: " + dir + ": is a directory\n", 1}
	if got != want {
		t.Fatalf("cat with a missing file and a directory:\n got %+v\nwant %+v", got, want)
	}
}

func TestCatStdin(t *testing.T) {
	if got := runCat(t, "from stdin", nil); got != (result{"from stdin", "", 0}) {
		t.Fatalf("cat with no args: %+v", got)
	}
	dir := t.TempDir()
	a := write(t, dir, "a", []byte("<"))
	b := write(t, dir, "b", []byte(">"))
	if got := runCat(t, "middle", nil, a, "-", b, "-"); got != (result{"<middle>", "", 0}) {
		t.Fatalf("cat a - b -: %+v", got)
	}
}

// TestCatToFile sends large files to a standard output that is a regular
// file, where the copy runs many chunks at once, and to one opened for
// appending.
func TestCatToFile(t *testing.T) {
	dir := t.TempDir()
	r := rand.New(rand.NewSource(1))
	big1, big2 := make([]byte, 5<<20+3), make([]byte, 3<<20+11)
	r.Read(big1)
	r.Read(big2)
	a, b := write(t, dir, "a", big1), write(t, dir, "b", big2)
	want := append(append([]byte{}, big1...), big2...)

	outName := filepath.Join(dir, "out")
	out, err := os.Create(outName)
	if err != nil {
		t.Fatal(err)
	}
	if got := runCat(t, "", out, a, b); got.code != 0 || got.stderr != "" {
		t.Fatalf("cat a b > out: %+v", got)
	}
	out.Close()
	if got, _ := os.ReadFile(outName); !bytes.Equal(got, want) {
		t.Fatalf("out holds %d bytes, want %d; equal %v", len(got), len(want), bytes.Equal(got, want))
	}

	appendName := write(t, dir, "log", []byte("head:"))
	app, err := os.OpenFile(appendName, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := runCat(t, "", app, a); got.code != 0 || got.stderr != "" {
		t.Fatalf("cat a >> log: %+v", got)
	}
	app.Close()
	if got, _ := os.ReadFile(appendName); !bytes.Equal(got, append([]byte("head:"), big1...)) {
		t.Fatalf("log holds %d bytes", len(got))
	}
}

// TestCatToPipe reads a large file into a pipe, which is written in order.
func TestCatToPipe(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 4<<20+5)
	rand.New(rand.NewSource(2)).Read(big)
	a := write(t, dir, "a", big)
	got := runCat(t, "", nil, a)
	if got.code != 0 || got.stderr != "" || got.stdout != string(big) {
		t.Fatalf("cat a | ...: code %d, stderr %q, %d bytes out", got.code, got.stderr, len(got.stdout))
	}
}

// TestCatBrokenPipe: a reader that goes away (cat | head) ends cat quietly.
func TestCatBrokenPipe(t *testing.T) {
	dir := t.TempDir()
	a := write(t, dir, "a", make([]byte, 8<<20))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	got := runCat(t, "", w, a)
	w.Close()
	if got.code != 1 || got.stderr != "" {
		t.Fatalf("cat into a closed pipe: %+v", got)
	}
}

// TestFallback: where io_uring is refused, cat works on Go's os (quietly:
// cat keeps its stderr for errors about files).
func TestFallback(t *testing.T) {
	t.Setenv(exampletest.RefuseEnv, "1")
	dir := t.TempDir()
	p := write(t, dir, "a", []byte("no io_uring here\n"))
	r := runCat(t, "", nil, p)
	if r.code != 0 || r.stdout != "no io_uring here\n" {
		t.Fatalf("%+v", r)
	}
}
