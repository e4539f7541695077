//go:build linux

package unpriv

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Possible says whether Drop can work here, and if not, why.
func Possible() (bool, string) {
	if os.Geteuid() == 0 {
		return true, ""
	}
	// Already unprivileged: lowering the limit is enough, unless the
	// process holds CAP_IPC_LOCK without being root.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if unix.Capget(&hdr, &data[0]) == nil && data[0].Effective&(1<<unix.CAP_IPC_LOCK) != 0 {
		return false, "not root (cannot setuid) and holding CAP_IPC_LOCK (the memlock limit does not apply)"
	}
	return true, ""
}

// Drop sets RLIMIT_MEMLOCK to limit bytes (soft and hard) and, as root,
// becomes uid and gid, losing every capability. Call it in a child process:
// it cannot be undone.
func Drop(uid int, limit uint64) error {
	rl := unix.Rlimit{Cur: limit, Max: limit}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		return fmt.Errorf("setrlimit memlock %d: %w", limit, err)
	}
	if os.Geteuid() != 0 {
		return nil
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(uid); err != nil {
		return fmt.Errorf("setgid %d: %w", uid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	return nil
}

// UID returns a user id of its own for this test run, so that what other
// runs (and their lingering ring teardowns) lock is not charged to it: the
// limit is per user. base separates the packages that use it.
func UID(base int) int { return base + os.Getpid()%1000 }
