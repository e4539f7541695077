// Package unpriv makes a test's child process an unprivileged user with a
// given RLIMIT_MEMLOCK, as io_uring's users meet it: root has CAP_IPC_LOCK,
// which exempts it from the limit. Linux only.
package unpriv
