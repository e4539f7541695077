//go:build linux

package ring

// Stats counts what a ring did since New. Reading them costs nothing; they are
// plain counters owned by whoever drives the ring.
type Stats struct {
	Submitted       uint64 // SQEs the kernel took
	Reaped          uint64 // CQEs consumed with CQAdvance/SeenCQE
	Enters          uint64 // io_uring_enter calls
	SQFull          uint64 // GetSQE calls refused with ErrSQFull
	Busy            uint64 // enters answered EBUSY or EAGAIN
	OverflowFlushes uint64 // times completions held back by the kernel were flushed
}

// Stats returns the ring's counters.
func (r *Ring) Stats() Stats { return r.stats }
