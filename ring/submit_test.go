//go:build linux

package ring

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Submitting, waiting and reaping.

func TestSubmitAndWait(t *testing.T) {
	r := newRing(t, 16)
	for i := 0; i < 10; i++ {
		s := sqe(t, r)
		s.PrepNop()
		s.SetUserData(uint64(i))
	}
	if r.SQReady() != 10 || r.SQSpace() != 6 {
		t.Fatalf("SQReady %d SQSpace %d", r.SQReady(), r.SQSpace())
	}
	n, err := r.SubmitAndWait(10)
	if err != nil || n != 10 {
		t.Fatalf("SubmitAndWait = %d, %v", n, err)
	}
	if r.CQReady() != 10 || r.SQReady() != 0 {
		t.Fatalf("CQReady %d SQReady %d", r.CQReady(), r.SQReady())
	}
	// Nothing to submit: Submit does not enter the kernel.
	enters := r.Stats().Enters
	if n, err := r.Submit(); n != 0 || err != nil || r.Stats().Enters != enters {
		t.Fatalf("empty Submit = %d, %v (enters %d -> %d)", n, err, enters, r.Stats().Enters)
	}
	st := r.Stats()
	if st.Submitted != 10 || st.Enters != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestPeekBatchAndCQAdvance(t *testing.T) {
	r := newRing(t, 16)
	for i := 0; i < 10; i++ {
		s := sqe(t, r)
		s.PrepNop()
		s.SetUserData(uint64(100 + i))
	}
	if _, err := r.SubmitAndWait(10); err != nil {
		t.Fatal(err)
	}
	dst := make([]CQE, 4)
	if n := r.PeekBatch(dst); n != 4 || dst[0].UserData != 100 || dst[3].UserData != 103 {
		t.Fatalf("PeekBatch = %d, %+v", n, dst)
	}
	if n := r.PeekBatch(dst); n != 4 || dst[0].UserData != 100 {
		t.Fatal("PeekBatch consumed CQEs")
	}
	r.CQAdvance(4)
	dst = make([]CQE, 16)
	if n := r.PeekBatch(dst); n != 6 || dst[0].UserData != 104 || dst[5].UserData != 109 {
		t.Fatalf("PeekBatch = %d, %+v", n, dst[:n])
	}
	r.CQAdvance(6)
	if n := r.PeekBatch(dst); n != 0 || r.CQReady() != 0 {
		t.Fatalf("PeekBatch on an empty CQ = %d", n)
	}
	if r.Stats().Reaped != 10 {
		t.Errorf("Reaped %d", r.Stats().Reaped)
	}
}

func TestPeekCQEEmpty(t *testing.T) {
	r := newRing(t, 4)
	if c, err := r.PeekCQE(); c != nil || err != syscall.EAGAIN {
		t.Fatalf("PeekCQE on an empty ring = %+v, %v; want EAGAIN", c, err)
	}
	sqe(t, r).PrepNop()
	submit(t, r, 1)
	c, err := r.PeekCQE()
	if err != nil {
		t.Fatal(err)
	}
	// PeekCQE does not consume: the same CQE until SeenCQE.
	if c2, _ := r.PeekCQE(); c2 != c {
		t.Fatal("PeekCQE moved on without SeenCQE")
	}
	r.SeenCQE(c)
	if _, err := r.PeekCQE(); err != syscall.EAGAIN {
		t.Fatalf("after SeenCQE: %v", err)
	}
}

func TestWaitCQEBlocks(t *testing.T) {
	r := newRing(t, 4)
	rd, wr := pipe(t)
	buf := make([]byte, 8)
	s := sqe(t, r)
	s.PrepRead(rd, buf, -1)
	s.SetUserData(3)
	submit(t, r, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		unix.Write(wr, []byte("late"))
	}()
	start := time.Now()
	c, err := r.WaitCQE()
	if err != nil || c.UserData != 3 || c.Res != 4 {
		t.Fatalf("WaitCQE = %+v, %v", c, err)
	}
	r.SeenCQE(c)
	if el := time.Since(start); el < 15*time.Millisecond {
		t.Fatalf("WaitCQE returned after %v, before the data was written", el)
	}
}

func TestWaitTimeouts(t *testing.T) {
	r := newRing(t, 4)
	start := time.Now()
	n, err := r.SubmitAndWaitTimeout(1, 30*time.Millisecond)
	if n != 0 || !errors.Is(err, syscall.ETIME) {
		t.Fatalf("SubmitAndWaitTimeout with nothing to do = %d, %v; want ETIME", n, err)
	}
	if el := time.Since(start); el < 30*time.Millisecond || el > 2*time.Second {
		t.Fatalf("timed out after %v", el)
	}
	if c, err := r.WaitCQETimeout(10 * time.Millisecond); c != nil || !errors.Is(err, syscall.ETIME) {
		t.Fatalf("WaitCQETimeout on an empty ring = %+v, %v", c, err)
	}
	if _, err := r.WaitCQETimeout(0); !errors.Is(err, syscall.ETIME) {
		t.Fatalf("WaitCQETimeout(0) = %v", err)
	}

	// Submitting and waiting at once: a NOP completes well before the timeout.
	sqe(t, r).PrepNop()
	start = time.Now()
	if n, err := r.SubmitAndWaitTimeout(1, 5*time.Second); n != 1 || err != nil || r.CQReady() != 1 {
		t.Fatalf("SubmitAndWaitTimeout = %d, %v, CQReady %d", n, err, r.CQReady())
	}
	if time.Since(start) > time.Second {
		t.Fatal("SubmitAndWaitTimeout waited for the timeout")
	}
	c, err := r.WaitCQETimeout(time.Second)
	if err != nil || c.Res != 0 {
		t.Fatalf("WaitCQETimeout with a CQE ready = %+v, %v", c, err)
	}
	r.SeenCQE(c)

	// Something submitted that does not complete: the count, and no error
	// (the kernel reports the submission, not the expired wait).
	rd, _ := pipe(t)
	buf := make([]byte, 1)
	sqe(t, r).PrepRead(rd, buf, -1)
	if n, err := r.SubmitAndWaitTimeout(1, 10*time.Millisecond); n != 1 || err != nil || r.CQReady() != 0 {
		t.Fatalf("SubmitAndWaitTimeout of a read that blocks = %d, %v, CQReady %d", n, err, r.CQReady())
	}
	// A later wait on the same read times out.
	if _, err := r.WaitCQETimeout(10 * time.Millisecond); !errors.Is(err, syscall.ETIME) {
		t.Fatalf("WaitCQETimeout = %v", err)
	}
}

func TestSQFull(t *testing.T) {
	r := newRing(t, 4)
	for i := 0; i < 4; i++ {
		s := sqe(t, r)
		s.PrepNop()
		s.SetUserData(uint64(i))
	}
	if s, err := r.GetSQE(); s != nil || err != ErrSQFull {
		t.Fatalf("GetSQE on a full SQ = %v, %v; want ErrSQFull", s, err)
	}
	if r.SQSpace() != 0 || r.Stats().SQFull != 1 {
		t.Fatalf("SQSpace %d SQFull %d", r.SQSpace(), r.Stats().SQFull)
	}
	submit(t, r, 4)
	s := sqe(t, r) // room again
	s.PrepNop()
	s.SetUserData(4)
	cqes := run(t, r, 5)
	for i, c := range cqes {
		if c.UserData != uint64(i) {
			t.Fatalf("CQEs out of order: %+v", cqes)
		}
	}
}

// TestCQOverflow submits far more NOPs than the CQ holds without reaping:
// the kernel holds the rest back (FeatNoDrop), and reaping gets every one of
// them, in order.
func TestCQOverflow(t *testing.T) {
	r := newRing(t, 4, WithCQSize(4))
	if r.CQEntries() != 4 {
		t.Fatalf("CQ of %d entries", r.CQEntries())
	}
	const total = 200
	for i := 0; i < total; i++ {
		s, err := r.GetSQE()
		if err == ErrSQFull {
			if _, err := r.Submit(); err != nil {
				t.Fatalf("Submit with the CQ overflowed: %v", err)
			}
			s, err = r.GetSQE()
		}
		if err != nil {
			t.Fatal(err)
		}
		s.PrepNop()
		s.SetUserData(uint64(i))
	}
	submit(t, r, 4)
	if r.CQReady() != 4 {
		t.Fatalf("CQReady %d, want a full CQ", r.CQReady())
	}
	for i := 0; i < total; i++ {
		c, err := r.PeekCQE()
		if err != nil {
			t.Fatalf("CQE %d of %d: %v", i, total, err)
		}
		if c.UserData != uint64(i) || c.Res != 0 {
			t.Fatalf("CQE %d: %+v", i, c)
		}
		r.SeenCQE(c)
	}
	if _, err := r.PeekCQE(); err != syscall.EAGAIN {
		t.Fatalf("after the last CQE: %v", err)
	}
	st := r.Stats()
	if st.OverflowFlushes == 0 || st.Reaped != total || r.Overflowed() != 0 {
		t.Fatalf("stats %+v, dropped %d", st, r.Overflowed())
	}
	t.Logf("stats %+v", st)
}

// TestCQOverflowBatch: PeekBatch flushes held-back CQEs too, and
// SubmitAndWait waits through an overflow.
func TestCQOverflowBatch(t *testing.T) {
	r := newRing(t, 8, WithCQSize(8))
	const total = 64
	for i := 0; i < total; i += 8 {
		for j := 0; j < 8; j++ {
			s := sqe(t, r)
			s.PrepNop()
			s.SetUserData(uint64(i + j))
		}
		if _, err := r.SubmitAndWait(1); err != nil {
			t.Fatal(err)
		}
	}
	dst := make([]CQE, 3)
	next := uint64(0)
	for next < total {
		n := r.PeekBatch(dst)
		if n == 0 {
			t.Fatalf("PeekBatch found nothing after %d CQEs", next)
		}
		for _, c := range dst[:n] {
			if c.UserData != next {
				t.Fatalf("CQE %+v, want user data %d", c, next)
			}
			next++
		}
		r.CQAdvance(uint32(n))
	}
	if r.Stats().OverflowFlushes == 0 {
		t.Fatal("no overflow flush counted")
	}
}

// TestZeroAllocs: getting, preparing, submitting, waiting and reaping
// allocate nothing.
func TestZeroAllocs(t *testing.T) {
	r := newRing(t, 32)
	rd, wr := pipe(t)
	buf := make([]byte, 8)
	dst := make([]CQE, 32)
	cases := map[string]func(){
		"GetSQE+PrepNop+Submit+WaitCQE+SeenCQE": func() {
			s, _ := r.GetSQE()
			s.PrepNop()
			s.SetUserData(1)
			r.Submit()
			c, _ := r.WaitCQE()
			r.SeenCQE(c)
		},
		"32 x GetSQE+PrepNop, SubmitAndWait, PeekBatch+CQAdvance": func() {
			for i := 0; i < 32; i++ {
				s, _ := r.GetSQE()
				s.PrepNop()
			}
			r.SubmitAndWait(32)
			r.CQAdvance(uint32(r.PeekBatch(dst)))
		},
		"SubmitAndWaitTimeout+PeekCQE": func() {
			s, _ := r.GetSQE()
			s.PrepNop()
			r.SubmitAndWaitTimeout(1, time.Second)
			c, _ := r.PeekCQE()
			r.SeenCQE(c)
		},
		"expiring waits (ETIME), PeekCQE (EAGAIN)": func() {
			r.SubmitAndWaitTimeout(1, 0)
			r.WaitCQETimeout(0)
			r.PeekCQE()
		},
		"pipe write+read": func() {
			s, _ := r.GetSQE()
			s.PrepWrite(wr, buf, -1)
			s.SetFlags(SQEIOLink)
			s, _ = r.GetSQE()
			s.PrepRead(rd, buf, -1)
			r.SubmitAndWait(2)
			r.CQAdvance(uint32(r.PeekBatch(dst)))
		},
	}
	for name, f := range cases {
		if a := testing.AllocsPerRun(200, f); a != 0 {
			t.Errorf("%s: %v allocs per run", name, a)
		}
	}
	if r.CQReady() != 0 || r.SQReady() != 0 {
		t.Fatalf("left over: CQ %d SQ %d", r.CQReady(), r.SQReady())
	}
}

// EBUSY and EAGAIN from io_uring_enter could not be provoked here: this kernel
// (6.18, FeatNoDrop) does not refuse submissions while CQEs overflow
// (TestCQOverflow submits through an overflow without error), and EAGAIN needs
// the kernel to fail a request allocation. Submit leaves what the kernel did
// not take queued and counts EBUSY/EAGAIN in Stats.Busy; this checks that a
// refused enter leaves the SQ as it was, with an errno the kernel does give:
// EBADFD from a ring that is still disabled (IORING_SETUP_R_DISABLED).
func TestEnterErrorKeepsSQEs(t *testing.T) {
	r := newRing(t, 4, WithFlags(SetupRDisabled))
	sqe(t, r).PrepNop()
	if _, err := r.Submit(); !errors.Is(err, syscall.EBADFD) {
		t.Fatalf("Submit on a disabled ring: %v, want EBADFD", err)
	}
	if r.SQReady() != 1 {
		t.Fatalf("SQReady %d after a refused enter, want 1", r.SQReady())
	}
}

// TestSubmitAndWaitBlocks: SubmitAndWait submits and then sleeps until the
// completion arrives, on every kind of ring whose wait is made apart from the
// submission (see submitThenWait) and on one whose wait is not (WithRawEnter).
func TestSubmitAndWaitBlocks(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"plain", nil},
		{"coop taskrun", []Option{WithCoopTaskrun(), WithTaskrunFlag()}},
		{"defer taskrun", []Option{WithDeferTaskrun(), WithTaskrunFlag()}},
		{"defer taskrun, no flag", []Option{WithDeferTaskrun()}},
		{"raw enter", []Option{WithRawEnter()}}, // may return early: see below
	} {
		t.Run(tc.name, func(t *testing.T) {
			onLockedThread(t, func() {
				r, err := New(4, tc.opts...)
				if err != nil {
					t.Error(err)
					return
				}
				defer r.Close()
				rd, wr := pipe(t)
				buf := make([]byte, 8)
				s, _ := r.GetSQE()
				s.PrepRead(rd, buf, -1)
				s.SetUserData(5)
				go func() {
					time.Sleep(20 * time.Millisecond)
					unix.Write(wr, []byte("late"))
				}()
				start := time.Now()
				if n, err := r.SubmitAndWait(1); n != 1 || err != nil {
					t.Errorf("SubmitAndWait = %d, %v", n, err)
					return
				}
				// A raw wait is not shielded from the signals with which the
				// scheduler preempts a goroutine, and the kernel reports an
				// interrupted wait after a submission as the count alone.
				if el := time.Since(start); el < 15*time.Millisecond && !r.rawEnter {
					t.Errorf("SubmitAndWait returned after %v, before the data was written", el)
				}
				c, err := r.WaitCQETimeout(5 * time.Second)
				if err != nil || c.UserData != 5 || c.Res != 4 {
					t.Errorf("PeekCQE = %+v, %v", c, err)
					return
				}
				r.SeenCQE(c)

				// What completes inline needs one enter, submission and wait.
				enters := r.Stats().Enters
				s, _ = r.GetSQE()
				s.PrepNop()
				if n, err := r.SubmitAndWait(1); n != 1 || err != nil || r.CQReady() != 1 {
					t.Errorf("SubmitAndWait of a NOP = %d, %v, CQReady %d", n, err, r.CQReady())
				}
				if d := r.Stats().Enters - enters; d != 1 {
					t.Errorf("SubmitAndWait of a NOP entered %d times, want 1", d)
				}
			})
		})
	}
}

// TestPeekBatchWraps: a batch that runs past the end of the CQ comes back in
// order, the entries at the end of the ring and then those at its start.
func TestPeekBatchWraps(t *testing.T) {
	r := newRing(t, 8, WithCQSize(8))
	dst := make([]CQE, 8)
	ud := uint64(0)
	for round := 0; round < 10; round++ {
		want := 5 - round%2*3 // 5 and 2: both ways of copying
		for i := 0; i < want; i++ {
			s := sqe(t, r)
			s.PrepNop()
			s.SetUserData(ud + uint64(i))
		}
		if n, err := r.SubmitAndWait(uint32(want)); n != want || err != nil {
			t.Fatalf("SubmitAndWait = %d, %v", n, err)
		}
		if n := r.PeekBatch(dst); n != want {
			t.Fatalf("round %d: PeekBatch = %d, want %d", round, n, want)
		}
		for i := 0; i < want; i++ {
			if dst[i].UserData != ud+uint64(i) {
				t.Fatalf("round %d: CQE %d has user data %d, want %d", round, i, dst[i].UserData, ud+uint64(i))
			}
		}
		r.CQAdvance(uint32(want))
		ud += uint64(want)
	}
}

// TestSubmitAndSleep: on a ring made WithRawEnter, SubmitAndSleep and
// SubmitAndSleepTimeout submit and wait as SubmitAndWait would (their wait
// is a blocking system call instead of a raw one), without allocating.
func TestSubmitAndSleep(t *testing.T) {
	onLockedThread(t, func() {
		r, err := New(4, WithRawEnter(), WithDeferTaskrun(), WithTaskrunFlag())
		if err != nil {
			t.Error(err)
			return
		}
		defer r.Close()
		rd, wr := pipe(t)
		buf := make([]byte, 8)
		s, _ := r.GetSQE()
		s.PrepRead(rd, buf, -1)
		s.SetUserData(5)
		go unix.Write(wr, []byte("late"))
		if n, err := r.SubmitAndSleep(1); n != 1 || err != nil {
			t.Errorf("SubmitAndSleep = %d, %v", n, err)
			return
		}
		c, err := r.WaitCQETimeout(5 * time.Second)
		if err != nil || c.UserData != 5 || c.Res != 4 {
			t.Errorf("CQE = %+v, %v", c, err)
			return
		}
		r.SeenCQE(c)

		// Nothing to submit or to wait for: the timeout ends the wait.
		if _, err := r.SubmitAndSleepTimeout(1, time.Millisecond); !errors.Is(err, syscall.ETIME) {
			t.Errorf("SubmitAndSleepTimeout with nothing in flight: %v, want ETIME", err)
		}

		// What completes inline needs one enter, without allocating.
		allocs := testing.AllocsPerRun(100, func() {
			enters := r.Stats().Enters
			s, _ := r.GetSQE()
			s.PrepNop()
			if n, err := r.SubmitAndSleep(1); n != 1 || err != nil || r.CQReady() != 1 {
				t.Errorf("SubmitAndSleep of a NOP = %d, %v, CQReady %d", n, err, r.CQReady())
			}
			if d := r.Stats().Enters - enters; d != 1 {
				t.Errorf("SubmitAndSleep of a NOP entered %d times, want 1", d)
			}
			r.CQAdvance(r.CQReady())
		})
		if allocs != 0 {
			t.Errorf("SubmitAndSleep allocates %v times a call", allocs)
		}
	})
}
