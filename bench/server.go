package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// serverCPU is the CPU every server is pinned to; the load runs on loadCPU.
const (
	serverCPU = 0
	loadCPU   = 1
)

// process is a running server: started pinned to its CPU (serverCPU; an
// upstream, loadCPU) with GOMAXPROCS=1, ready once it printed "listening on".
type process struct {
	name   string
	addr   string
	cmd    *exec.Cmd
	stderr *tail
	exited chan struct{}
	err    error // why it exited, valid once exited is closed
}

// launch says how to start a server program.
type launch struct {
	name, bin string
	addrFlag  string // the flag it takes its address by, "-addr" or another
	udp       bool   // it listens on UDP: its port is a free UDP port
	args      []string
	cpu       int  // where it runs, if pin
	pin       bool // pinned to cpu
}

// startServer runs l.bin ADDRFLAG 127.0.0.1:PORT args... on its core and
// waits until it says it is listening.
func startServer(l launch) (*process, error) {
	name, bin, pin := l.name, l.bin, l.pin
	port, err := freePort(l.udp)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	argv := append([]string{bin, l.addrFlag, addr}, l.args...)
	if pin {
		if taskset, err := exec.LookPath("taskset"); err == nil {
			argv = append([]string{taskset, "-c", strconv.Itoa(l.cpu)}, argv...)
		}
	}
	p := &process{name: name, addr: addr, stderr: &tail{max: 4096}, exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	p.cmd.Stderr = p.stderr
	// If the suite dies, so do its servers.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A pipe of our own rather than StdoutPipe, so that reading it may go
	// on after Wait.
	stdout, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p.cmd.Stdout = w
	err = p.cmd.Start()
	w.Close()
	if err != nil {
		stdout.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if pin && !strings.HasSuffix(argv[0], "taskset") {
		// No taskset: pin what threads there are now; later ones inherit.
		pinProcess(p.cmd.Process.Pid, l.cpu)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		announced := false
		for sc.Scan() {
			if !announced && strings.Contains(sc.Text(), "listening on") {
				announced = true
				close(ready)
			}
		}
		io.Copy(io.Discard, stdout)
		stdout.Close()
	}()
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case <-ready:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("%s exited before listening (%v): %s", name, p.err, p.stderr.String())
	case <-time.After(15 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s did not print \"listening on\" within 15s: %s", name, p.stderr.String())
	}
}

// alive reports whether the server is still running, and if not, why.
func (p *process) alive() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited (%v): %s", p.name, p.err, p.stderr.String())
	default:
		return nil
	}
}

// cpuTime returns the CPU time (user + system) the server has used so far,
// from /proc/PID/stat.
func (p *process) cpuTime() time.Duration {
	return procCPU(p.cmd.Process.Pid)
}

// stop ends the server: SIGTERM, then SIGKILL if it lingers.
func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// procCPU reads utime + stime of pid from /proc/PID/stat (0 if it cannot).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; count fields after it.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	const clockTicks = 100                      // USER_HZ: always 100 on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// freePort asks the kernel for a free loopback port, TCP or UDP.
func freePort(udp bool) (int, error) {
	if udp {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// pinProcess pins every thread of pid to cpu.
func pinProcess(pid, cpu int) error {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	var set unix.CPUSet
	set.Set(cpu)
	var errs []error
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("pin thread %d to CPU %d: %w", tid, cpu, err))
		}
	}
	return errors.Join(errs...)
}

// tail keeps the last max bytes written to it: a server's stderr, for errors.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return "(no output on stderr)"
	}
	return s
}
