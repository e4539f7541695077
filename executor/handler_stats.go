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
	sums := st.counters()
	for i, l := range s.loops {
		p := &l.pub
		if i == 0 {
			st.RecvMode = RecvMode(p.mode.Load())
		}
		st.Conns += int(p.conns.Load())
		for k, sum := range sums {
			*sum += p.ctr[k].Load()
		}
	}
	return st
}

// hctr names one of a loop's counters: its index in hstats and hpub.
type hctr int

const (
	ctrAccepted hctr = iota
	ctrTurns
	ctrEnters // the ring's, copied at publish
	ctrCQEs
	ctrBytesIn
	ctrBytesOut
	ctrSends
	ctrZCSends
	ctrNoBufs
	ctrPauses
	ctrPanics
	ctrStale // the op table's, copied at publish
	nctr
)

// counters are st's counter fields, by hctr.
func (st *ServerStats) counters() [nctr]*uint64 {
	return [nctr]*uint64{
		ctrAccepted: &st.Accepted, ctrTurns: &st.Turns, ctrEnters: &st.Enters, ctrCQEs: &st.CQEs,
		ctrBytesIn: &st.BytesIn, ctrBytesOut: &st.BytesOut, ctrSends: &st.Sends, ctrZCSends: &st.ZCSends,
		ctrNoBufs: &st.NoBufs, ctrPauses: &st.Pauses, ctrPanics: &st.Panics, ctrStale: &st.Stale,
	}
}

// hstats are a loop's counters, kept plainly on its thread.
type hstats [nctr]uint64

// hpub are a loop's counters as last published, for Stats.
type hpub struct {
	mode, conns atomic.Int64
	ctr         [nctr]atomic.Uint64
}

// publish copies the loop's counters where Stats reads them.
func (l *hloop) publish() {
	l.publishRing()
	l.pub.conns.Store(int64(len(l.conns)))
	for k, v := range l.st {
		l.pub.ctr[k].Store(v)
	}
}
