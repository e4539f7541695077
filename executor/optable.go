//go:build linux

package executor

import (
	"github.com/kasync-go/kasync/ring"
)

// opState is where an op is in its one lifecycle:
//
//	opFree -> opLive -> (opCancelling) -> opDone -> opFree
//
// begin makes it live (its SQE is prepared, tagged and queued); a cancel
// request marks it cancelling; its terminal CQE (the one without CQEFMore)
// makes it done; release frees the slot and moves its generation on.
type opState uint8

const (
	opFree opState = iota
	opLive
	opCancelling
	opDone
)

// opTable holds a loop's ops by slot, for both loop kinds. User data carries
// slot+1 and the slot's generation; dispatch drops a CQE whose generation is
// no longer the slot's, so a late or extra completion never reaches a new
// owner. Not safe for concurrent use: the goroutine loop holds its mutex,
// the fast path runs on one thread.
//
// The release rule: an op that someone waits for (it has a done channel:
// the goroutine loops' ops) is released by that waiter once it has seen the
// terminal CQE; an op nobody waits for (the fast path's callback ops) is
// released by dispatch right after its terminal callback, and so is a
// goroutine loop's op marked detached (a Conn's write-behind SEND).
type opTable struct {
	ops   []*op
	free  []uint32
	live  int    // ops begun and not yet done
	stale uint64 // CQEs dropped for an old generation
}

// alloc returns a free op with a new generation. Ops of a goroutine loop
// (owner != nil) get the done channel their waiter sleeps on.
func (t *opTable) alloc(owner *loop) *op {
	var o *op
	if n := len(t.free); n > 0 {
		o = t.ops[t.free[n-1]]
		t.free = t.free[:n-1]
	} else {
		o = &op{l: owner, slot: uint32(len(t.ops))}
		if owner != nil {
			o.done = make(chan struct{}, 1)
		}
		t.ops = append(t.ops, o)
	}
	o.gen++
	o.res, o.flags, o.onCQE, o.detached = 0, 0, nil, false
	return o
}

// begin makes o (from alloc) live, its SQE prepared: it tags the SQE with
// o's user data, after the prep, which sets every field.
func (t *opTable) begin(o *op, sqe *ring.SQE) {
	o.state = opLive
	t.live++
	sqe.UserData = o.userData()
}

// dispatch routes one CQE to its op: onCQE sees it, and the terminal CQE
// records the result and ends the op, which then wakes its waiter or, with
// none, is released. It reports whether an op ended.
func (t *opTable) dispatch(c *ring.CQE) (ended bool) {
	o, ok := t.lookup(c.UserData)
	if !ok {
		if c.UserData != udIgnore {
			t.stale++
		}
		return false
	}
	if o.onCQE != nil {
		o.onCQE(c.Res, c.Flags)
	}
	if c.More() {
		return false
	}
	o.res, o.flags, o.state = c.Res, c.Flags, opDone
	t.live--
	if o.done == nil || o.detached {
		t.put(o)
		return true
	}
	select {
	case o.done <- struct{}{}:
	default:
	}
	return true
}

// markCancel records that o's cancellation is being asked; false if o has
// already ended (there is nothing left to cancel).
func (t *opTable) markCancel(o *op) bool {
	if o.state != opLive && o.state != opCancelling {
		return false
	}
	o.state = opCancelling
	return true
}

// put returns o's slot; its generation moves on.
func (t *opTable) put(o *op) {
	o.onCQE = nil
	o.state = opFree
	o.gen++
	t.free = append(t.free, o.slot)
}

// lookup finds the live op a CQE's user data names.
func (t *opTable) lookup(userData uint64) (*op, bool) {
	slot, gen := uint32(userData)-1, uint32(userData>>32)
	if userData == udIgnore || int(slot) >= len(t.ops) {
		return nil, false
	}
	o := t.ops[slot]
	return o, o.gen == gen && o.inFlight()
}

// cancelTarget says what one ASYNC_CANCEL asks for: one op (by its user
// data), every request on a descriptor, or every request on the ring.
type cancelTarget struct {
	ud  uint64
	fd  int
	all bool
}

func opTarget(o *op) cancelTarget  { return cancelTarget{ud: o.userData(), fd: -1} }
func fdTarget(fd int) cancelTarget { return cancelTarget{fd: fd} }

var ringTarget = cancelTarget{fd: -1, all: true}

// prepCancel is the one place an ASYNC_CANCEL SQE is prepared. Its own CQE
// is ignored (the cancelled op's CQE says what happened), and skipped when
// it succeeds.
func prepCancel(sqe *ring.SQE, t cancelTarget) {
	switch {
	case t.all:
		sqe.PrepCancelAny()
	case t.ud != 0:
		sqe.PrepCancel(t.ud, 0)
	default:
		sqe.PrepCancelFd(t.fd, ring.CancelAll)
	}
	sqe.UserData = udIgnore
	sqe.Flags |= ring.SQECQESkipSuccess
}
