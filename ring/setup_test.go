//go:build linux

package ring

import (
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nopRoundTrip submits one NOP and reaps its CQE.
func nopRoundTrip(r *Ring, ud uint64) error {
	s, err := r.GetSQE()
	if err != nil {
		return err
	}
	s.PrepNop()
	s.SetUserData(ud)
	if _, err := r.SubmitAndWait(1); err != nil {
		return err
	}
	c, err := r.WaitCQETimeout(5 * time.Second)
	if err != nil {
		return err
	}
	defer r.SeenCQE(c)
	if c.UserData != ud || c.Res != 0 {
		return errors.New("NOP CQE carries the wrong user data or result")
	}
	return nil
}

// onLockedThread runs f on a fresh goroutine locked to its thread. The thread
// exits with the goroutine, and with it whatever the kernel keeps per thread.
func onLockedThread(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread goes away
		f()
	}()
	<-done
}

func TestSetupOptions(t *testing.T) {
	checkFDLeak(t)
	cases := []struct {
		name   string
		opts   []Option
		flags  uint32
		locked bool // needs New, submit and wait on one thread
	}{
		{"default", nil, 0, false},
		{"SQPOLL", []Option{WithSQPoll(20 * time.Millisecond)}, SetupSQPoll, false},
		{"SQPOLL+CPU", []Option{WithSQPoll(20 * time.Millisecond), WithSQPollCPU(runtime.NumCPU() - 1)}, SetupSQPoll | SetupSQAff, false},
		{"CQSIZE", []Option{WithCQSize(100)}, SetupCQSize, false},
		{"CLAMP", []Option{WithClamp()}, SetupClamp, false},
		{"SUBMIT_ALL", []Option{WithSubmitAll()}, SetupSubmitAll, false},
		{"COOP_TASKRUN", []Option{WithCoopTaskrun()}, SetupCoopTaskrun, false},
		{"TASKRUN_FLAG", []Option{WithCoopTaskrun(), WithTaskrunFlag()}, SetupCoopTaskrun | SetupTaskrunFlag, false},
		{"SINGLE_ISSUER", []Option{WithSingleIssuer()}, SetupSingleIssuer, true},
		{"DEFER_TASKRUN", []Option{WithDeferTaskrun()}, SetupDeferTaskrun | SetupSingleIssuer, true},
		{"DEFER_TASKRUN+TASKRUN_FLAG", []Option{WithDeferTaskrun(), WithTaskrunFlag()}, SetupDeferTaskrun | SetupTaskrunFlag, true},
		{"NO_SQARRAY", []Option{WithNoSQArray()}, SetupNoSQArray, false},
		{"raw flags", []Option{WithFlags(SetupSubmitAll | SetupCoopTaskrun)}, SetupSubmitAll | SetupCoopTaskrun, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := func() {
				r, err := New(8, tc.opts...)
				if err != nil {
					t.Errorf("New: %v", err)
					return
				}
				defer r.Close()
				if r.Flags()&tc.flags != tc.flags || r.Params().Flags != r.Flags() {
					t.Errorf("Flags %#x, want %#x set", r.Flags(), tc.flags)
				}
				// More round trips than SQ slots: the rings wrap.
				for i := uint64(0); i < 20; i++ {
					if err := nopRoundTrip(r, i+1); err != nil {
						t.Errorf("NOP %d: %v", i, err)
						return
					}
				}
			}
			if tc.locked {
				onLockedThread(t, body)
			} else {
				body()
			}
		})
	}
}

func TestSetupSizes(t *testing.T) {
	r := newRing(t, 5)
	if r.SQEntries() != 8 || r.CQEntries() != 16 {
		t.Errorf("New(5): SQ %d CQ %d, want 8 and 16", r.SQEntries(), r.CQEntries())
	}
	r = newRing(t, 4, WithCQSize(100))
	if r.SQEntries() != 4 || r.CQEntries() != 128 {
		t.Errorf("WithCQSize(100): SQ %d CQ %d, want 4 and 128", r.SQEntries(), r.CQEntries())
	}
	r = newRing(t, MaxEntries*4, WithClamp())
	if r.SQEntries() != MaxEntries || r.CQEntries() != 2*MaxEntries {
		t.Errorf("clamped: SQ %d CQ %d, want %d and %d", r.SQEntries(), r.CQEntries(), MaxEntries, 2*MaxEntries)
	}
	if err := nopRoundTrip(r, 1); err != nil {
		t.Error(err)
	}
	r = newRing(t, 8, WithClamp(), WithCQSize(1<<30))
	if r.CQEntries() != 2*MaxEntries {
		t.Errorf("clamped CQ %d, want %d", r.CQEntries(), 2*MaxEntries)
	}
	if _, err := New(8, WithCQSize(1<<30)); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("huge CQ without clamp: %v, want EINVAL", err)
	}
	if _, err := New(8, WithCQSize(4)); !errors.Is(err, syscall.EINVAL) || errors.Is(err, ErrUnavailable) {
		t.Errorf("CQ smaller than SQ: %v, want EINVAL (not ErrUnavailable)", err)
	}
}

func TestSetupIOPoll(t *testing.T) {
	r, err := New(4, WithIOPoll())
	if err != nil {
		// IOPOLL needs nothing at setup on Linux 6.x; if a kernel refuses it,
		// the error must say so plainly.
		if !strings.Contains(err.Error(), "io_uring_setup") {
			t.Fatalf("IOPOLL refused without a clear error: %v", err)
		}
		t.Skipf("IOPOLL refused: %v", err)
	}
	defer r.Close()
	if r.Flags()&SetupIOPoll == 0 {
		t.Fatal("IOPOLL flag missing")
	}
	if err := nopRoundTrip(r, 1); err != nil {
		t.Fatalf("NOP on an IOPOLL ring: %v", err)
	}
	// Buffered I/O cannot be polled: the kernel refuses it per request.
	_, fd := tempFile(t, "x")
	buf := make([]byte, 1)
	sqe(t, r).PrepRead(fd, buf, 0)
	c := run(t, r, 1)[0]
	t.Logf("buffered read on an IOPOLL ring: Res %d (%v)", c.Res, c.Err())
	if c.Res >= 0 {
		t.Fatalf("buffered read on an IOPOLL ring succeeded")
	}
}

func TestSubmitAll(t *testing.T) {
	for _, all := range []bool{false, true} {
		var opts []Option
		if all {
			opts = append(opts, WithSubmitAll())
		}
		r := newRing(t, 4, opts...)
		s := sqe(t, r)
		s.PrepNop()
		s.Opcode = 250 // no such opcode: fails while the kernel prepares it
		s.SetUserData(1)
		sqe(t, r).PrepNop()
		n, err := r.Submit()
		want := 1 // the kernel stops at the failed SQE...
		if all {
			want = 2 // ...unless told to submit them all
		}
		if err != nil || n != want || int(r.SQReady()) != 2-want {
			t.Fatalf("SubmitAll %v: Submit = %d, %v, %d left; want %d", all, n, err, r.SQReady(), want)
		}
		wantErr(t, reap(t, r, 1)[0], syscall.EINVAL)
	}
}

func TestSingleIssuerOtherThread(t *testing.T) {
	onLockedThread(t, func() {
		r, err := New(4, WithSingleIssuer())
		if err != nil {
			t.Error(err)
			return
		}
		defer r.Close()
		if err := nopRoundTrip(r, 1); err != nil {
			t.Error(err)
		}
		onLockedThread(t, func() {
			if err := nopRoundTrip(r, 2); !errors.Is(err, syscall.EEXIST) {
				t.Errorf("submit from another thread: %v, want EEXIST", err)
			}
			if err := r.RegisterFilesSparse(2); !errors.Is(err, syscall.EEXIST) {
				t.Errorf("register from another thread: %v, want EEXIST", err)
			}
		})
	})
}

// TestTaskrunFlagPeek: on a COOP_TASKRUN ring the kernel does not interrupt
// the thread to post a completion; TASKRUN_FLAG tells PeekCQE to enter.
func TestTaskrunFlagPeek(t *testing.T) {
	onLockedThread(t, func() {
		r, err := New(4, WithCoopTaskrun(), WithTaskrunFlag())
		if err != nil {
			t.Error(err)
			return
		}
		defer r.Close()
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(p[0])
		defer unix.Close(p[1])
		buf := make([]byte, 4)
		s, _ := r.GetSQE()
		s.PrepRead(p[0], buf, -1)
		if _, err := r.Submit(); err != nil {
			t.Error(err)
			return
		}
		// Another thread makes the read ready; the completion is task work
		// queued to this thread.
		onLockedThread(t, func() { unix.Write(p[1], []byte("tw")) })
		deadline := time.Now().Add(2 * time.Second)
		for {
			c, err := r.PeekCQE()
			if err == nil {
				if c.Res != 2 {
					t.Errorf("CQE %+v", c)
				}
				r.SeenCQE(c)
				break
			}
			if err != syscall.EAGAIN || time.Now().After(deadline) {
				t.Errorf("PeekCQE: %v (SQ flags %#x)", err, atomic.LoadUint32(r.sq.kflags))
				return
			}
		}
	})
}

func TestParamsAndFeatures(t *testing.T) {
	r := newRing(t, 8, WithSQPoll(50*time.Millisecond))
	p := r.Params()
	if p.SQEntries != 8 || p.CQEntries != 16 || p.SQThreadIdle != 50 || p.Flags&SetupSQPoll == 0 {
		t.Errorf("Params %+v", p)
	}
	if p.Features != r.Features() || p.SQOff.Array == 0 || p.CQOff.CQEs == 0 {
		t.Errorf("Params %+v", p)
	}
	// Linux 6.1 has all of these.
	for _, f := range []uint32{FeatSingleMmap, FeatNoDrop, FeatSubmitStable, FeatFastPoll, FeatExtArg, FeatNativeWorkers, FeatCQESkip, FeatLinkedFile} {
		if !r.HasFeature(f) {
			t.Errorf("feature %#x missing from %#x", f, r.Features())
		}
	}
	if r.HasFeature(1 << 31) {
		t.Error("HasFeature(1<<31) true")
	}
	if r.Fd() < 0 {
		t.Error("Fd < 0")
	}
}

func TestWithoutFeaturesAndOps(t *testing.T) {
	r := newRing(t, 4, WithoutFeatures(FeatExtArg|FeatSingleMmap), WithoutOps(OpSendZC, OpSocket))
	if r.HasFeature(FeatExtArg) || r.HasFeature(FeatSingleMmap) || !r.HasFeature(FeatNoDrop) {
		t.Errorf("features %#x", r.Features())
	}
	if r.Supports(OpSendZC) || r.Supports(OpSocket) || !r.Supports(OpSend) {
		t.Error("WithoutOps not honoured")
	}
	// Without FeatSingleMmap the CQ ring is mapped on its own: still works.
	if &r.sqMem[0] == &r.cqMem[0] {
		t.Error("CQ ring shares the SQ mapping without FeatSingleMmap")
	}
	if err := nopRoundTrip(r, 1); err != nil {
		t.Fatal(err)
	}
	// Waiting with a timeout needs EXT_ARG: a clear error, not a hang.
	if _, err := r.WaitCQETimeout(time.Millisecond); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("WaitCQETimeout without FeatExtArg: %v, want EOPNOTSUPP", err)
	}
	if _, err := r.SubmitAndWaitTimeout(1, time.Millisecond); !errors.Is(err, syscall.EOPNOTSUPP) {
		t.Errorf("SubmitAndWaitTimeout without FeatExtArg: %v, want EOPNOTSUPP", err)
	}
}

func TestNewBadEntries(t *testing.T) {
	for _, n := range []uint32{0, MaxEntries + 1, 1 << 31, ^uint32(0)} {
		r, err := New(n)
		if err == nil || r != nil {
			t.Errorf("New(%d) = %v, %v; want an error", n, r, err)
			continue
		}
		if !errors.Is(err, syscall.EINVAL) || errors.Is(err, ErrUnavailable) {
			t.Errorf("New(%d): %v, want EINVAL", n, err)
		}
	}
	if _, err := New(0, WithClamp()); err == nil {
		t.Error("New(0, WithClamp()) succeeded")
	}
	if _, err := New(4, WithTaskrunFlag()); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("TASKRUN_FLAG without COOP/DEFER_TASKRUN: %v, want EINVAL", err)
	}
}

func TestClosedRing(t *testing.T) {
	checkFDLeak(t)
	r, err := New(4)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s on a closed ring: %v, want ErrClosed", name, err)
		}
	}
	_, err = r.GetSQE()
	check("GetSQE", err)
	_, err = r.Submit()
	check("Submit", err)
	_, err = r.SubmitAndWait(1)
	check("SubmitAndWait", err)
	_, err = r.SubmitAndWaitTimeout(1, time.Second)
	check("SubmitAndWaitTimeout", err)
	_, err = r.PeekCQE()
	check("PeekCQE", err)
	_, err = r.WaitCQE()
	check("WaitCQE", err)
	_, err = r.WaitCQETimeout(time.Second)
	check("WaitCQETimeout", err)
	check("RegisterFiles", r.RegisterFiles([]int32{0}))
	check("RegisterFilesSparse", r.RegisterFilesSparse(4))
	_, err = r.RegisterFilesUpdate(0, []int32{0})
	check("RegisterFilesUpdate", err)
	check("RegisterFileAllocRange", r.RegisterFileAllocRange(0, 1))
	check("UnregisterFiles", r.UnregisterFiles())
	check("RegisterBuffers", r.RegisterBuffers([][]byte{make([]byte, 8)}))
	check("UnregisterBuffers", r.UnregisterBuffers())
	check("RegisterEventfd", r.RegisterEventfd(0, false))
	check("UnregisterEventfd", r.UnregisterEventfd())
	check("RegisterRingFd", r.RegisterRingFd())
	_, err = r.NewBufRing(1, 4, 64)
	check("NewBufRing", err)
	check("Close", r.Close())
	if r.PeekBatch(make([]CQE, 4)) != 0 || r.CQReady() != 0 || r.Overflowed() != 0 || r.Supports(OpNop) {
		t.Error("reading a closed ring")
	}
	r.CQAdvance(1) // no effect, no crash
}

func TestCloseWithBufRing(t *testing.T) {
	checkFDLeak(t)
	r, err := New(4)
	if err != nil {
		t.Fatal(err)
	}
	br, err := r.NewBufRing(1, 4, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := br.Close(); err != nil {
		t.Fatalf("BufRing.Close after Ring.Close: %v", err)
	}
	if err := br.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second BufRing.Close: %v", err)
	}
}

// TestSQPollWakeup lets the SQPOLL thread fall asleep, then submits: Submit
// must see IORING_SQ_NEED_WAKEUP and wake it.
func TestSQPollWakeup(t *testing.T) {
	r := newRing(t, 4, WithSQPoll(time.Millisecond))
	if err := nopRoundTrip(r, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for atomic.LoadUint32(r.sq.kflags)&sqNeedWakeup == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the SQPOLL thread never went to sleep")
		}
		time.Sleep(5 * time.Millisecond)
	}
	enters := r.Stats().Enters
	sqe(t, r).PrepNop()
	if n, err := r.Submit(); n != 1 || err != nil {
		t.Fatalf("Submit = %d, %v", n, err)
	}
	if r.Stats().Enters != enters+1 {
		t.Fatal("Submit did not enter the kernel to wake the SQPOLL thread")
	}
	wantRes(t, reap(t, r, 1)[0], 0)
	// While it is awake, submitting needs no system call.
	enters = r.Stats().Enters
	sqe(t, r).PrepNop()
	if n, err := r.Submit(); n != 1 || err != nil {
		t.Fatalf("Submit = %d, %v", n, err)
	}
	if r.Stats().Enters != enters {
		t.Log("the SQPOLL thread was asleep again already")
	}
	reap(t, r, 1)
}
