//go:build linux

package ring

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/kasync-go/kasync/internal/unpriv"
	"golang.org/x/sys/unix"
)

const memlockChildEnv = "KASYNC_RING_MEMLOCK_CHILD"

// TestMemlockCharges checks, against the kernel, what io_uring charges to
// RLIMIT_MEMLOCK for an unprivileged user: a child process drops to a uid of
// its own and, for each kind of memory, sets the limit to exactly what is
// locked so far plus what MemlockCost and friends predict (which must
// succeed), then to one byte less (which must fail with ENOMEM).
func TestMemlockCharges(t *testing.T) {
	if ok, why := unpriv.Possible(); !ok {
		t.Skip("cannot run as an unprivileged user: " + why)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), memlockChildEnv+"=1", "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func memlockChild() int {
	var hard unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_MEMLOCK, &hard)
	if err := unpriv.Drop(unpriv.UID(62000), hard.Max); err != nil {
		fmt.Println(err)
		return 2
	}
	if _, charged := MemlockLimit(); !charged {
		fmt.Println("still exempt from the memlock limit")
		return 1
	}
	used := 0
	setLimit := func(n int) {
		rl := unix.Rlimit{Cur: uint64(n), Max: hard.Max}
		if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
			panic(err)
		}
	}
	// try runs make under the limit used+cost-1 (must fail with ENOMEM) and
	// then used+cost (must succeed).
	try := func(what string, cost int, make func() error) bool {
		setLimit(used + cost - 1)
		if err := make(); !errors.Is(err, syscall.ENOMEM) {
			fmt.Printf("%s under %d bytes less than predicted: %v, want ENOMEM\n", what, 1, err)
			return false
		}
		setLimit(used + cost)
		if err := make(); err != nil {
			fmt.Printf("%s with exactly the predicted %d bytes: %v\n", what, cost, err)
			return false
		}
		used += cost
		fmt.Printf("%s: %s, as predicted\n", what, FormatBytes(uint64(cost)))
		return true
	}
	var rings []*Ring
	defer func() {
		for _, r := range rings {
			r.Close()
		}
	}()
	for _, c := range []struct {
		entries, cq uint32
		opts        []Option
		flags       uint32
	}{
		{1024, 4096, []Option{WithCQSize(4096)}, SetupCQSize},
		{4096, 32768, []Option{WithCQSize(32768), WithNoSQArray()}, SetupCQSize | SetupNoSQArray},
		{64, 512, []Option{WithCQSize(512), WithNoSQArray()}, SetupCQSize | SetupNoSQArray},
		{1, 0, nil, 0},
		{100, 0, nil, 0}, // rounded up to 128
	} {
		cost := MemlockCost(c.entries, c.cq, c.flags)
		var r *Ring
		ok := try(fmt.Sprintf("ring %d/%d", c.entries, c.cq), cost, func() (err error) {
			r, err = New(c.entries, c.opts...)
			return err
		})
		if !ok {
			return 1
		}
		if r.Memlock() != cost {
			fmt.Printf("ring %d: Memlock %d, MemlockCost %d\n", c.entries, r.Memlock(), cost)
			return 1
		}
		rings = append(rings, r)
	}
	r := rings[0]
	for i, c := range []struct {
		count uint32
		size  int
	}{{64, 64 << 10}, {512, 4 << 10}, {1024, 16 << 10}} {
		var br *BufRing
		ok := try(fmt.Sprintf("buffer ring %d x %d (buffers not charged)", c.count, c.size), BufRingMemlock(c.count), func() (err error) {
			br, err = r.NewBufRing(uint16(i), c.count, c.size)
			return err
		})
		if !ok {
			return 1
		}
		defer br.Close()
	}
	mem, err := unix.Mmap(-1, 0, 5*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		panic(err)
	}
	defer unix.Munmap(mem)
	bufs := [][]byte{mem[100 : 2*pageSize], mem[3*pageSize:]} // 2 pages and 2
	if !try("registered buffers", BuffersMemlock(bufs), func() error { return r.RegisterBuffers(bufs) }) {
		return 1
	}
	setLimit(used)
	err = rings[1].RegisterBuffers(bufs) // the same pages again, on another ring
	var me *MemlockError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "ulimit -l") {
		fmt.Printf("registering again over the limit: %v, want a MemlockError naming ulimit -l\n", err)
		return 1
	}
	fmt.Println("over the limit:", err)
	return 0
}
