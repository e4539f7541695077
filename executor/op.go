//go:build linux

package executor

import (
	"context"
	"sync"
	"time"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// An op is one request to the kernel: the one lifecycle that tasks, timers,
// net, files and the fast path share, on both kinds of loop.
//
//  1. begin (optable.go) takes a free slot for a prepared SQE and tags it
//     with user data = generation<<32 | slot+1. The SQE goes out with the
//     loop's next batch.
//  2. dispatch matches every CQE to its slot by that user data; one whose
//     generation is stale is counted and dropped. A multishot op's onCQE
//     sees each CQE; the CQE without CQEFMore is terminal.
//  3. The terminal CQE wakes the one goroutine waiting in wait, or, for a
//     callback op nobody waits for (the fast path), is seen by onCQE alone.
//  4. Cancellation (ASYNC_CANCEL, prepared by prepCancel) never ends an op
//     by itself: its own terminal CQE still comes, so memory the kernel was
//     using is released only once the kernel is done with it.
//  5. release returns the slot; its generation moves on.
//
// How an op starts is a parameter of that one path, not a copy of it: a
// single-shot op with or without a LINK_TIMEOUT (startSpec), a multishot op
// held by its owner (startHeld), a batch (startBatch).
type op struct {
	l     *loop // nil on the fast path
	slot  uint32
	gen   uint32
	state opState

	res   int32
	flags uint32
	done  chan struct{} // goroutine loops: receives once, at the terminal CQE

	// detached: nobody waits for this op of a goroutine loop (a Conn's
	// write-behind SEND); dispatch releases it after its terminal onCQE,
	// as it does the fast path's callback ops.
	detached bool

	// onCQE, if set, is called for every CQE of the op (multishot), on the
	// loop's thread or with the loop locked. It must not block.
	onCQE func(res int32, flags uint32)

	// Memory the kernel reads at submission, kept here so it is on the heap:
	// a timeout for the op itself, and one for its LINK_TIMEOUT.
	ts, linkTS unix.Timespec
}

// userData encodes an op's identity; 0 is never used by an op.
func (o *op) userData() uint64 { return uint64(o.gen)<<32 | uint64(o.slot+1) }

// inFlight reports whether the op has begun and not yet ended.
func (o *op) inFlight() bool { return o.state == opLive || o.state == opCancelling }

// udIgnore tags CQEs nobody waits for (cancel requests, linked timeouts).
const udIgnore = 0

// wait blocks until the op's terminal CQE. If ctx is done, first it asks
// the kernel to cancel the op. It reports whether it asked for
// cancellation; the result (res) says whether the op completed anyway.
// (Deadlines do not come here: they cancel the op through its opSlot.)
func (o *op) wait(ctx context.Context) (asked bool) {
	l := o.l
	select {
	case <-o.done: // it completed as it was submitted (startLocked)
		return false
	default:
	}
	l.reapReady()
	select {
	case <-o.done:
		return false
	default:
	}
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	if ctxDone == nil {
		// Nothing but the kernel can end this wait. Close of the executor
		// cancels every op in flight, so it ends too.
		<-o.done
		return false
	}
	select {
	case <-o.done:
		return false
	case <-ctxDone:
	}
	l.cancel(o)
	<-o.done
	return true
}

// do runs one single-shot operation to its end and returns its result or
// the error the caller sees (outcome.err): prep fills in the SQE. If ctx has
// a deadline, the kernel enforces it too, with a LINK_TIMEOUT.
func (l *loop) do(ctx context.Context, prep func(*ring.SQE, *op)) (int, error) {
	out, err := l.exec(ctx, nil, nil, prep)
	if err != nil {
		return 0, err
	}
	return out.result(ctx, nil, l)
}

// exec is the one way a single-shot operation runs from start to end; every
// layer (timers, files, net, splice) goes through it. With f, it holds a
// reference on the descriptor for the op's whole life, and an op that starts
// while f begins to close is cancelled like those already in flight on f.
// If ctx has a deadline, a LINK_TIMEOUT enforces it in the kernel. ctx cuts
// the wait short by cancelling the op, and exec still waits for its
// terminal CQE before releasing its slot. prep fills in the SQE (f's
// descriptor is f.fd). With slot, the op is on view to whoever cancels
// through the slot: a net deadline passing, and the owner's Close (for an
// op whose SQE names another descriptor, as a SPLICE into a pipe does). The
// error is only for an op that could not start.
func (l *loop) exec(ctx context.Context, f *sysFD, slot *opSlot, prep func(*ring.SQE, *op)) (outcome, error) {
	if f != nil {
		if err := f.acquire(); err != nil {
			return outcome{}, err
		}
		defer f.releaseRef()
	}
	spec := startSpec{now: true}
	if dl, ok := ctx.Deadline(); ok {
		spec.linked, spec.linkTS = true, unix.NsecToTimespec(max(int64(time.Until(dl)), 1))
	}
	o, err := l.start(prep, spec)
	if err != nil {
		return outcome{}, err
	}
	// The slot holds o before closing and the deadline are looked at: a
	// Close or a deadline that cancels through the slot either finds o there
	// or has already set what is looked at here.
	if slot != nil {
		slot.set(o)
	}
	switch {
	case f != nil && f.isClosing():
		l.cancel(o)
	case slot != nil && slot.passed != nil && slot.passed():
		slot.cancel(l)
	}
	return l.await(o, ctx, slot, spec.linked), nil
}

// await waits for o's terminal CQE (cut short by ctx, or cancelled through
// slot), releases it, and says how it ended.
func (l *loop) await(o *op, ctx context.Context, slot *opSlot, linked bool) outcome {
	asked := o.wait(ctx)
	out := outcome{res: o.res, linked: linked}
	if asked {
		out.stop = stopCtx
	}
	if slot != nil && slot.clear() {
		out.stop = stopDeadline
	}
	l.release(o)
	return out
}

// opSlot holds the operation a call has in flight, so that a deadline
// passing can cancel it: the one way a net deadline (Conn, PacketConn,
// rawConn, splice) cuts an op short. Without it, every wait would select on
// a deadline's channel too, which costs more than the send it waits for.
// The owner's Close cancels through it as well (cancelCause then names the
// close, which it checks first).
type opSlot struct {
	mu     sync.Mutex
	o      *op
	cut    bool        // the deadline cancelled o
	passed func() bool // reports a deadline that passed before the slot held o
}

func (s *opSlot) set(o *op) {
	s.mu.Lock()
	s.o, s.cut = o, false
	s.mu.Unlock()
}

// clear empties the slot (before the op is released) and reports whether
// the deadline cancelled the op.
func (s *opSlot) clear() (cut bool) {
	s.mu.Lock()
	cut = s.cut
	s.o, s.cut = nil, false
	s.mu.Unlock()
	return cut
}

// cancel cancels the op in the slot, if any; the slot's lock keeps it from
// being released meanwhile.
func (s *opSlot) cancel(l *loop) {
	s.mu.Lock()
	if s.o != nil {
		s.cut = true
		l.cancel(s.o)
	}
	s.mu.Unlock()
}

// startHeld starts a callback-driven (multishot) op on descriptor f, holding
// a reference on f until endHeld: the same reference exec holds for a
// single-shot op. keep hands the started op to its owner, which stores it
// where its Close finds it and returns true; if the owner closed meanwhile
// (its Close may have looked before the op existed), keep returns false and
// the op is cancelled and ended here.
func (l *loop) startHeld(f *sysFD, prep func(*ring.SQE, *op), keep func(*op) bool) error {
	if err := f.acquire(); err != nil {
		return err
	}
	o, err := l.start(prep, startSpec{})
	if err != nil {
		f.releaseRef()
		return err
	}
	if !keep(o) {
		l.cancel(o)
		l.endHeld(f, o)
	}
	return nil
}

// endHeld waits for an op from startHeld to post its last CQE (it ended, or
// was cancelled), then releases its slot and its reference on f.
func (l *loop) endHeld(f *sysFD, o *op) {
	o.wait(context.Background())
	l.release(o)
	f.releaseRef()
}
