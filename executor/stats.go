package executor

// Stats counts what an Executor did since New.
type Stats struct {
	Backend     Backend // io_uring, or go when io_uring was refused
	Loops       int
	Submitted   uint64  // SQEs the kernel took
	Completed   uint64  // operations that reached their terminal CQE
	Enters      uint64  // io_uring_enter calls
	Batches     uint64  // submissions that passed queued SQEs
	MeanBatch   float64 // Submitted / Batches
	InFlight    int     // operations started and not yet complete
	Cancels     uint64  // ASYNC_CANCEL requests for single operations
	Stale       uint64  // CQEs for a slot's old generation, dropped
	SQFullWaits uint64  // times a full SQ made a submitter flush first
	CQOverflows uint64  // times the kernel held completions back (CQ full) and they were flushed
	CQDropped   uint64  // CQEs the kernel dropped (should stay 0)

	SplicedBytes  uint64 // bytes Conn.ReadFrom/WriteTo moved with SPLICE, in the kernel
	FilterDropped uint64 // connections and datagrams dropped by filters (io_uring backend)
}

// Stats returns the executor's counters, summed over its loops.
func (e *Executor) Stats() Stats {
	s := Stats{Backend: e.backend, Loops: len(e.loops)}
	for _, l := range e.loops {
		l.addStats(&s)
	}
	if s.Batches > 0 {
		s.MeanBatch = float64(s.Submitted) / float64(s.Batches)
	}
	return s
}
