package executor

// opTable holds a loop's ops by slot. User data carries slot+1 and the slot's
// generation; lookup rejects a CQE whose generation is no longer the slot's,
// so a late completion never reaches a new owner. Not safe for concurrent
// use: the goroutine loop holds its mutex, the fast path runs on one thread.
type opTable struct {
	ops  []*op
	free []uint32
}

// alloc returns a free op with a new generation.
func (t *opTable) alloc(owner *loop) *op {
	var o *op
	if n := len(t.free); n > 0 {
		o = t.ops[t.free[n-1]]
		t.free = t.free[:n-1]
	} else {
		o = &op{l: owner, slot: uint32(len(t.ops)), done: make(chan struct{}, 1)}
		t.ops = append(t.ops, o)
	}
	o.gen++
	o.res, o.flags, o.onCQE = 0, 0, nil
	return o
}

// put returns o's slot; its generation moves on.
func (t *opTable) put(o *op) {
	o.onCQE = nil
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
	return o, o.gen == gen && o.live
}
