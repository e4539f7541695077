package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Machine describes where the suite ran, for the report.
type Machine struct {
	CPUs   int
	Model  string
	Kernel string
	Go     string
	Pinned bool // server on serverCPU, load on loadCPU
}

func (m Machine) String() string {
	placement := "server and load generator share the CPUs (not pinned)"
	if m.Pinned {
		placement = fmt.Sprintf("server on CPU %d (GOMAXPROCS=1), load generator on CPU %d", serverCPU, loadCPU)
	}
	return fmt.Sprintf("%d CPUs (%s), Linux %s, %s; %s", m.CPUs, m.Model, m.Kernel, m.Go, placement)
}

func describeMachine(pinned bool) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Model: "unknown CPU", Kernel: "unknown", Go: runtime.Version(), Pinned: pinned}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.Join(strings.Fields(v), " ")
				break
			}
		}
	}
	return m
}

// pinSelf pins every thread of this process to cpu; threads started later
// inherit it, and so do child processes unless they are pinned elsewhere.
func pinSelf(cpu int) error { return pinProcess(os.Getpid(), cpu) }

// canPin reports whether the machine has the CPUs the suite pins to.
func canPin() bool {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return false
	}
	return set.IsSet(serverCPU) && set.IsSet(loadCPU)
}

// raiseFileLimit lifts the open file limit as far as allowed: 1000
// connections need 1000 descriptors on each side. Servers inherit it.
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Max < need {
		// As root the hard limit may go up, to fs.nr_open at most.
		want := syscall.Rlimit{Cur: need, Max: need}
		if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
			if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && n < need {
				want = syscall.Rlimit{Cur: n, Max: n}
			}
		}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			return nil
		}
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur < need {
		return errors.New("open file limit " + strconv.FormatUint(lim.Cur, 10) + " is below " + strconv.FormatUint(need, 10) + ": raise it (ulimit -n) for scenarios with many connections")
	}
	return nil
}
