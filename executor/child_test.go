//go:build linux

package executor

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Tests that need a process of their own (io_uring refused by seccomp)
// re-run the test binary with childEnv naming a function from childFuncs.
const childEnv = "KASYNC_EXECUTOR_CHILD"

var childFuncs = map[string]func() error{}

func runChild() int {
	name := os.Getenv(childEnv)
	f, ok := childFuncs[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "no child function %q\n", name)
		return 2
	}
	if err := f(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// runInChild runs childFuncs[name] in a fresh process and returns its output.
func runInChild(t *testing.T, name string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", name, err, out)
	}
	return strings.TrimSpace(string(out))
}

// startChild starts childFuncs[name] in a fresh process that keeps running
// until its standard input closes, and returns the first line it printed;
// the process is stopped, and waited for, when the test ends.
func startChild(t *testing.T, name string, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+name), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %s: %v", name, err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child %s: %v", name, err)
	}
	return strings.TrimSpace(line)
}

// holdUntilStdinCloses is the end of a child started by startChild.
func holdUntilStdinCloses() {
	io.Copy(io.Discard, os.Stdin)
}
