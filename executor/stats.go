package executor

import "expvar"

// Stats counts what an Executor did since New. Its JSON names (the struct
// tags) are what Var publishes. On the Go backend the io_uring counters stay
// zero: Backend and BackendReason say why.
type Stats struct {
	// Backend is io_uring, or go where io_uring was refused.
	Backend Backend `json:"backend"`
	// BackendReason says why the backend is go: the kernel's refusal in
	// words, or "io_uring is Linux-only"; on io_uring, why the rings are
	// smaller or fewer than asked (the memlock limit); "" otherwise.
	BackendReason string `json:"backend_reason,omitempty"`
	// Memlocked is the locked memory (RLIMIT_MEMLOCK) the rings and buffer
	// rings of all of this process's Executors and Servers hold now.
	Memlocked int64 `json:"memlocked"`
	// Loops is the number of rings.
	Loops int `json:"loops"`
	// Submitted counts the SQEs the kernel took.
	Submitted uint64 `json:"submitted"`
	// Completed counts the operations that reached their terminal CQE.
	Completed uint64 `json:"completed"`
	// Enters counts io_uring_enter calls.
	Enters uint64 `json:"enters"`
	// Batches counts the submissions that passed queued SQEs.
	Batches uint64 `json:"batches"`
	// MeanBatch is Submitted / Batches.
	MeanBatch float64 `json:"mean_batch"`
	// InFlight is the number of operations started and not yet complete.
	InFlight int `json:"in_flight"`
	// Cancels counts the ASYNC_CANCEL requests for single operations.
	Cancels uint64 `json:"cancels"`
	// Stale counts the CQEs for a slot's old generation, dropped.
	Stale uint64 `json:"stale"`
	// SQFullWaits counts the times a full SQ made a submitter flush first.
	SQFullWaits uint64 `json:"sq_full_waits"`
	// CQOverflows counts the times the kernel held completions back (the
	// CQ was full) and they were flushed: an error counter, a CQ too small.
	CQOverflows uint64 `json:"cq_overflows"`
	// CQDropped counts the CQEs the kernel dropped (should stay 0).
	CQDropped uint64 `json:"cq_dropped"`
	// SplicedBytes counts the bytes Conn.ReadFrom and WriteTo moved with
	// SPLICE, in the kernel.
	SplicedBytes uint64 `json:"spliced_bytes"`
	// FilterDropped counts the connections and datagrams dropped by
	// filters (io_uring backend).
	FilterDropped uint64 `json:"filter_dropped"`
}

// Stats returns the executor's counters, summed over its loops.
func (e *Executor) Stats() Stats {
	s := Stats{Backend: e.backend, BackendReason: e.reason, Loops: len(e.loops), Memlocked: memlockedNow()}
	for _, l := range e.loops {
		l.addStats(&s)
	}
	if s.Batches > 0 {
		s.MeanBatch = float64(s.Submitted) / float64(s.Batches)
	}
	return s
}

// Var returns the executor's Stats as an expvar.Var, whose String is their
// JSON, read afresh each time: expvar.Publish("kasync", e.Var()) puts them
// on /debug/vars.
func (e *Executor) Var() expvar.Var { return expvar.Func(func() any { return e.Stats() }) }
