//go:build linux

package seccomp

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

const childEnv = "KASYNC_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// setup calls io_uring_setup(1, &params) and returns its errno.
func setup() syscall.Errno {
	var p [120]byte
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&p)), 0)
	if errno == 0 {
		unix.Close(int(fd))
	}
	return errno
}

// child installs the filter while another thread already runs, then checks
// io_uring refused on both threads and other system calls allowed.
func child() int {
	if setup() != 0 {
		os.Stdout.WriteString("io_uring_setup fails before the filter\n")
		return 1
	}
	ask, answer := make(chan bool), make(chan syscall.Errno)
	go func() {
		runtime.LockOSThread() // a thread that exists before the filter
		<-ask
		answer <- setup()
	}()
	if err := RefuseIOUring(); err != nil {
		os.Stdout.WriteString(err.Error() + "\n")
		return 1
	}
	ask <- true
	other := <-answer
	_, _, enter := unix.Syscall6(unix.SYS_IO_URING_ENTER, 0, 0, 0, 0, 0, 0)
	if e := setup(); e != syscall.EPERM || other != syscall.EPERM || enter != syscall.EPERM {
		os.Stdout.WriteString("io_uring not refused: " + e.Error() + ", other thread " + other.Error() + ", enter " + enter.Error() + "\n")
		return 1
	}
	if os.Getpid() != unix.Getpid() {
		return 1
	}
	if _, err := os.ReadFile("/proc/self/status"); err != nil {
		os.Stdout.WriteString("other calls refused: " + err.Error() + "\n")
		return 1
	}
	os.Stdout.WriteString("OK\n")
	return 0
}

func TestRefuseIOUring(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "OK" {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// The parent is untouched.
	if e := setup(); e != 0 {
		t.Fatalf("io_uring_setup in the parent: %v", e)
	}
}

func TestProgram(t *testing.T) {
	p := program(unix.AUDIT_ARCH_X86_64, uint32(syscall.EPERM))
	// Every jump lands inside the program, on a return.
	for i, ins := range p {
		if ins.Code&0x07 != unix.BPF_JMP {
			continue
		}
		for _, off := range []uint8{ins.Jt, ins.Jf} {
			if to := i + 1 + int(off); to >= len(p) {
				t.Fatalf("instruction %d jumps to %d, past the end", i, to)
			}
		}
	}
	if last := p[len(p)-1]; last.K != unix.SECCOMP_RET_ERRNO|uint32(syscall.EPERM) {
		t.Fatalf("last instruction %+v", last)
	}
}
