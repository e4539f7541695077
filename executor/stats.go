package executor

// Stats counts what an Executor did since New.
type Stats struct {
	Backend Backend // io_uring, or go when io_uring was refused
	// BackendReason says why io_uring was refused, or why the rings are
	// smaller or fewer than asked (the memlock limit); "" otherwise.
	BackendReason string
	// Memlocked is the locked memory (RLIMIT_MEMLOCK) the rings and buffer
	// rings of all of this process's Executors and Servers hold now.
	Memlocked   int64
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
	s := Stats{Backend: e.backend, BackendReason: e.reason, Loops: len(e.loops), Memlocked: memlocked.Load()}
	for _, l := range e.loops {
		l.mu.Lock()
		rs := l.lastRing
		if !l.closed {
			rs = l.r.Stats()
			s.CQDropped += uint64(l.r.Overflowed())
		}
		s.Submitted += rs.Submitted
		s.Enters += rs.Enters
		s.CQOverflows += rs.OverflowFlushes
		s.InFlight += l.table.live
		s.Stale += l.table.stale
		l.mu.Unlock()
		s.Completed += l.stats.completed.Load()
		s.Batches += l.stats.batches.Load()
		s.Cancels += l.stats.cancels.Load()
		s.SQFullWaits += l.stats.sqFullWaits.Load()
		s.SplicedBytes += l.net.spliced.Load()
		s.FilterDropped += l.net.dropped.Load()
	}
	if s.Batches > 0 {
		s.MeanBatch = float64(s.Submitted) / float64(s.Batches)
	}
	return s
}
