package loadgen

import "time"

// schedule is the open loop's timetable: send k (0, 1, 2, ...) is due at
// start + k/rate, on connection k mod conns, so that every connection
// gets an equal share of the rate and the sends of all of them are spread
// evenly in time. It is pure arithmetic on a clock it is given, so it can be
// tested without one.
type schedule struct {
	start time.Duration // when send 0 is due, on the driver's clock
	rate  float64       // sends per second over all connections (> 0)
	conns int           // > 0
}

// at returns when send k is due.
func (s schedule) at(k uint64) time.Duration {
	return s.start + time.Duration(float64(k)*1e9/s.rate)
}

// due returns how many sends are due by now: the count of k with at(k) <= now.
func (s schedule) due(now time.Duration) uint64 {
	if now < s.start {
		return 0
	}
	n := uint64(float64(now-s.start)*s.rate/1e9) + 1
	// Floating point may be one off either way: settle it by at itself,
	// so that due and at always agree.
	for n > 0 && s.at(n-1) > now {
		n--
	}
	for s.at(n) <= now {
		n++
	}
	return n
}

// conn returns the connection send k goes out on.
func (s schedule) conn(k uint64) int { return int(k % uint64(s.conns)) }

// sendAt returns when the j-th send (0-based) of connection c is due.
func (s schedule) sendAt(c int, j uint64) time.Duration {
	return s.at(j*uint64(s.conns) + uint64(c))
}
