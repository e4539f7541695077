package executor

import (
	"expvar"
	"sync/atomic"
)

// A Server's counters: kept plainly by each loop, published when asked.

// ServerStats counts what a Server's loops did. Its JSON names (the struct
// tags) are what Var publishes.
type ServerStats struct {
	// Backend is what the server runs on: io_uring, or Go's net where the
	// kernel refused it (the Executor's backend, or for this server alone,
	// the memlock limit).
	Backend Backend `json:"backend"`
	// BackendReason says why, or why its rings are smaller than asked; ""
	// when there is nothing to say.
	BackendReason string `json:"backend_reason,omitempty"`

	// Loops is the number of loops.
	Loops int `json:"loops"`
	// RecvMode is what the loops receive with (the first loop's, if they
	// differ); in JSON its name.
	RecvMode RecvMode `json:"recv_mode"`
	// Conns is the number of connections open now.
	Conns int `json:"conns"`
	// Accepted counts the connections opened: accepted, and those Dial and
	// Adopt opened.
	Accepted uint64 `json:"accepted"`
	// AcceptErrors counts the accepts that failed (out of descriptors or
	// memory: EMFILE, ENFILE, ENOMEM...), each retried.
	AcceptErrors uint64 `json:"accept_errors"`
	// Resets counts the connections that ended with ECONNRESET or EPIPE.
	Resets uint64 `json:"resets"`
	// Timeouts counts the connections closed by a read, write or idle
	// timeout (ServeReadTimeout and its kin).
	Timeouts uint64 `json:"timeouts"`
	// Turns counts loop turns, each with one io_uring_enter that waits.
	Turns uint64 `json:"turns"`
	// Enters counts all io_uring_enter calls (more than Turns if the SQ
	// filled).
	Enters uint64 `json:"enters"`
	// CQEs counts the completions reaped.
	CQEs uint64 `json:"cqes"`
	// BytesIn counts the bytes received.
	BytesIn uint64 `json:"bytes_in"`
	// BytesOut counts the bytes sent.
	BytesOut uint64 `json:"bytes_out"`
	// Sends counts SEND operations (at most one per connection per turn).
	Sends uint64 `json:"sends"`
	// ZCSends counts the zero-copy ones among Sends.
	ZCSends uint64 `json:"zc_sends"`
	// NoCopySends counts the WriteNoCopy calls that sent from the receive
	// buffer itself, not a copy.
	NoCopySends uint64 `json:"no_copy_sends"`
	// NoBufs counts the receives that found the buffer ring empty and
	// were re-armed: buffer exhaustion (ServeBuffers).
	NoBufs uint64 `json:"no_bufs"`
	// Pauses counts the times a connection stopped receiving for output
	// over the limit (ServeOutputLimit).
	Pauses uint64 `json:"pauses"`
	// Panics counts the handler calls that panicked.
	Panics uint64 `json:"panics"`
	// Stale counts the CQEs for a slot's old generation, dropped.
	Stale uint64 `json:"stale"`
	// CQOverflows counts the times the kernel held completions back (a
	// loop's CQ was full) and they were flushed.
	CQOverflows uint64 `json:"cq_overflows"`
	// CQDropped counts the completions the kernel dropped (CQ full, no
	// memory): 0 unless something is broken.
	CQDropped uint64 `json:"cq_dropped"`
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
	st := ServerStats{Loops: len(s.loops), Backend: s.backend, BackendReason: s.reason}
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
	st.AcceptErrors += s.acceptErrs.Load()
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
	ctrNoCopySends
	ctrNoBufs
	ctrPauses
	ctrPanics
	ctrStale       // the op table's, copied at publish
	ctrCQOverflows // the ring's, copied at publish
	ctrCQDropped   // the ring's, copied at publish
	ctrAcceptErrors
	ctrResets
	ctrTimeouts
	nctr
)

// counters are st's counter fields, by hctr.
func (st *ServerStats) counters() [nctr]*uint64 {
	return [nctr]*uint64{
		ctrAccepted: &st.Accepted, ctrTurns: &st.Turns, ctrEnters: &st.Enters, ctrCQEs: &st.CQEs,
		ctrBytesIn: &st.BytesIn, ctrBytesOut: &st.BytesOut, ctrSends: &st.Sends, ctrZCSends: &st.ZCSends,
		ctrNoCopySends: &st.NoCopySends,
		ctrNoBufs:      &st.NoBufs, ctrPauses: &st.Pauses, ctrPanics: &st.Panics, ctrStale: &st.Stale,
		ctrCQOverflows: &st.CQOverflows, ctrCQDropped: &st.CQDropped,
		ctrAcceptErrors: &st.AcceptErrors, ctrResets: &st.Resets,
		ctrTimeouts: &st.Timeouts,
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

// Var returns the server's ServerStats as an expvar.Var, whose String is
// their JSON, asked of the loops each time: expvar.Publish("kasync.serve",
// s.Var()) puts them on /debug/vars.
func (s *Server) Var() expvar.Var { return expvar.Func(func() any { return s.Stats() }) }
