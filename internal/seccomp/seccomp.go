//go:build linux

// Package seccomp installs a seccomp filter that refuses io_uring, the way a
// container's default seccomp profile does, so tests can prove that kasync
// notices and falls back. Use it in a child process (re-exec the test binary):
// the filter cannot be removed, and it covers every thread of the process.
package seccomp

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RefuseIOUring makes io_uring_setup, io_uring_enter and io_uring_register
// fail with EPERM in every thread of the process, now and later; every other
// system call is allowed. It is irreversible.
func RefuseIOUring() error { return RefuseIOUringErrno(syscall.EPERM) }

// RefuseIOUringErrno is RefuseIOUring with another errno (ENOSYS mimics a
// kernel without io_uring).
func RefuseIOUringErrno(errno syscall.Errno) error {
	arch, ok := auditArch[runtime.GOARCH]
	if !ok {
		return fmt.Errorf("seccomp: no audit arch known for %s", runtime.GOARCH)
	}
	// Both calls below must run on one thread: no_new_privs is per thread
	// (TSYNC then spreads it with the filter).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("seccomp: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	filter := program(arch, uint32(errno))
	prog := &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(prog)))
	runtime.KeepAlive(filter)
	if e != 0 {
		return fmt.Errorf("seccomp: install filter: %w", e)
	}
	if r != 0 {
		return fmt.Errorf("seccomp: thread %d could not take the filter", r)
	}
	return nil
}

var auditArch = map[string]uint32{
	"amd64": unix.AUDIT_ARCH_X86_64,
	"arm64": unix.AUDIT_ARCH_AARCH64,
}

// program is a classic BPF filter over struct seccomp_data {int nr; u32 arch; ...}:
// a foreign arch or a syscall other than io_uring_* is allowed, io_uring_*
// gets errno.
func program(arch, errno uint32) []unix.SockFilter {
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	return []unix.SockFilter{
		{Code: ld, K: 4},                                      // 0: A = arch
		{Code: jeq, K: arch, Jt: 0, Jf: 4},                    // 1: foreign arch -> allow
		{Code: ld, K: 0},                                      // 2: A = nr
		{Code: jeq, K: unix.SYS_IO_URING_SETUP, Jt: 3},        // 3: -> refuse
		{Code: jeq, K: unix.SYS_IO_URING_ENTER, Jt: 2},        // 4: -> refuse
		{Code: jeq, K: unix.SYS_IO_URING_REGISTER, Jt: 1},     // 5: -> refuse
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},                // 6
		{Code: ret, K: unix.SECCOMP_RET_ERRNO | errno&0xffff}, // 7
	}
}
