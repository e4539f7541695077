//go:build linux

package ring

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/kasync-go/kasync/internal/seccomp"
)

// childEnv makes the test binary, run again by TestUnavailable, install the
// seccomp filter and report what New says.
const childEnv = "KASYNC_RING_SECCOMP_CHILD"

func TestMain(m *testing.M) {
	if errno := os.Getenv(childEnv); errno != "" {
		os.Exit(seccompChild(errno))
	}
	if os.Getenv(memlockChildEnv) != "" {
		os.Exit(memlockChild())
	}
	os.Exit(m.Run())
}

// seccompChild refuses io_uring with errno, then prints New's error.
func seccompChild(name string) int {
	errno := map[string]syscall.Errno{"EPERM": syscall.EPERM, "ENOSYS": syscall.ENOSYS}[name]
	if err := seccomp.RefuseIOUringErrno(errno); err != nil {
		os.Stdout.WriteString("seccomp: " + err.Error() + "\n")
		return 2
	}
	r, err := New(8)
	if err == nil {
		r.Close()
		os.Stdout.WriteString("New succeeded under seccomp\n")
		return 1
	}
	var ue *UnavailableError
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errno) || !errors.As(err, &ue) || ue.Errno != errno {
		os.Stdout.WriteString("wrong error: " + err.Error() + "\n")
		return 1
	}
	os.Stdout.WriteString("ERR " + err.Error() + "\n")
	return 0
}

// TestUnavailable runs this test binary again in a child process that
// refuses io_uring with seccomp, as a container's default profile does.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct{ errno, says string }{
		{"EPERM", "seccomp"},
		{"ENOSYS", "CONFIG_IO_URING"},
	} {
		t.Run(tc.errno, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+tc.errno, "GORACE=atexit_sleep_ms=0")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			msg := strings.TrimSpace(string(out))
			if !strings.HasPrefix(msg, "ERR ") || !strings.Contains(msg, tc.says) {
				t.Fatalf("New under seccomp (%s) said %q; want it to mention %q", tc.errno, msg, tc.says)
			}
			t.Log(msg)
		})
	}
	// This process is not affected.
	r := newRing(t, 2)
	if err := nopRoundTrip(r, 1); err != nil {
		t.Fatal(err)
	}
}

func TestUnavailableErrorCauses(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		says  []string
	}{
		{syscall.EPERM, []string{"seccomp", "kernel.io_uring_disabled"}},
		{syscall.EACCES, []string{"seccomp"}},
		{syscall.ENOSYS, []string{"older than", "CONFIG_IO_URING"}},
		{syscall.ENOMEM, []string{"RLIMIT_MEMLOCK", "ulimit -l"}},
	} {
		err := setupError(tc.errno)
		var ue *UnavailableError
		if !errors.As(err, &ue) || !errors.Is(err, ErrUnavailable) || !errors.Is(err, tc.errno) {
			t.Errorf("%v: %v is not an UnavailableError wrapping both", tc.errno, err)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(ue.Cause(), s) || !strings.Contains(err.Error(), s) {
				t.Errorf("%v: %q does not mention %q", tc.errno, err, s)
			}
		}
		if !strings.Contains(err.Error(), "io_uring_setup") || !strings.Contains(err.Error(), tc.errno.Error()) {
			t.Errorf("%v: %q lacks the call or the errno", tc.errno, err)
		}
	}
	// Other errnos are mistakes in the call, not a refusal.
	if err := setupError(syscall.EINVAL); errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("EINVAL: %v", err)
	}
	if (&UnavailableError{Errno: syscall.EIO}).Cause() == "" {
		t.Error("no cause for an unexpected errno")
	}
}
