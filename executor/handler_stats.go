package executor

import (
	"sync/atomic"
)

// A Server's counters: kept plainly by each loop, published when asked.

// ServerStats counts what a Server's loops did.
type ServerStats struct {
	Loops    int
	RecvMode RecvMode // what the loops use (the first loop's, if they differ)
	Conns    int      // open now
	Accepted uint64
	Turns    uint64 // loop turns, each with one io_uring_enter that waits
	Enters   uint64 // all io_uring_enter calls (more than Turns if the SQ filled)
	CQEs     uint64
	BytesIn  uint64
	BytesOut uint64
	Sends    uint64 // SEND operations (at most one per connection per turn)
	ZCSends  uint64 // of which zero-copy
	NoBufs   uint64 // receives that found the buffer ring empty and were re-armed
	Pauses   uint64 // times a connection stopped receiving for output over the limit
	Panics   uint64
	Stale    uint64 // CQEs for a slot's old generation, dropped
}

// Stats returns the server's counters. Each loop publishes them when asked,
// so that its turns pay nothing for them.
//
// From a handler, the other loops' counters are as of their last publication:
// a loop never waits for another.
func (s *Server) Stats() ServerStats {
	if own := s.ownLoop(); own != nil {
		own.publish()
	} else {
		for _, l := range s.loops {
			ch := make(chan struct{})
			if l.post(hmsg{kind: hmsgStats, ch: ch}, nil) {
				<-ch
			}
		}
	}
	st := ServerStats{Loops: len(s.loops)}
	for i, l := range s.loops {
		p := &l.pub
		if i == 0 {
			st.RecvMode = RecvMode(p.mode.Load())
		}
		st.Conns += int(p.conns.Load())
		st.Accepted += p.accepted.Load()
		st.Turns += p.turns.Load()
		st.Enters += p.enters.Load()
		st.CQEs += p.cqes.Load()
		st.BytesIn += p.bytesIn.Load()
		st.BytesOut += p.bytesOut.Load()
		st.Sends += p.sends.Load()
		st.ZCSends += p.zcSends.Load()
		st.NoBufs += p.noBufs.Load()
		st.Pauses += p.pauses.Load()
		st.Panics += p.panics.Load()
		st.Stale += p.stale.Load()
	}
	return st
}

// hstats are a loop's counters, kept plainly on its thread.
type hstats struct {
	accepted, turns, cqes, bytesIn, bytesOut, sends, zcSends, noBufs, pauses, panics uint64
}

// hpub are a loop's counters as published once per turn, for Stats.
type hpub struct {
	mode, conns                                                                                     atomic.Int64
	accepted, turns, enters, cqes, bytesIn, bytesOut, sends, zcSends, noBufs, pauses, panics, stale atomic.Uint64
}

// publish copies the loop's counters where Stats reads them.
func (l *hloop) publish() {
	p, s := &l.pub, &l.st
	p.conns.Store(int64(len(l.conns)))
	p.accepted.Store(s.accepted)
	p.turns.Store(s.turns)
	if l.r != nil {
		p.enters.Store(l.r.Stats().Enters)
	}
	p.cqes.Store(s.cqes)
	p.bytesIn.Store(s.bytesIn)
	p.bytesOut.Store(s.bytesOut)
	p.sends.Store(s.sends)
	p.zcSends.Store(s.zcSends)
	p.noBufs.Store(s.noBufs)
	p.pauses.Store(s.pauses)
	p.panics.Store(s.panics)
	p.stale.Store(l.table.stale)
}
