package loadgen

import "time"

// schedule is the open loop's timetable: send k (0, 1, 2, ...) is meant for
// start + k/rate, on connection k mod conns, so that every connection gets
// an equal share of the rate and the sends of all of them are spread evenly
// in time. With a tick, sends go out in batches, each at the first tick
// boundary (start + n*tick) at or after its time, and that boundary is
// their scheduled time: the generator wakes once per tick at most, and a
// send is neither early nor, when the generator keeps up, late. It is pure
// arithmetic on a clock it is given, so it can be tested without one.
type schedule struct {
	start time.Duration // when send 0 is due, on the driver's clock
	rate  float64       // sends per second over all connections (> 0)
	conns int           // > 0
	tick  time.Duration // batch sends per tick; 0: each at its own time
}

// nominal returns the time send k is meant for, before batching.
func (s schedule) nominal(k uint64) time.Duration {
	return time.Duration(float64(k) * 1e9 / s.rate)
}

// at returns when send k is due: its scheduled send time.
func (s schedule) at(k uint64) time.Duration {
	t := s.nominal(k)
	if s.tick > 0 {
		t = (t + s.tick - 1) / s.tick * s.tick
	}
	return s.start + t
}

// due returns how many sends are due by now: the count of k with at(k) <= now.
func (s schedule) due(now time.Duration) uint64 {
	if now < s.start {
		return 0
	}
	t := now - s.start
	if s.tick > 0 {
		// at(k) <= now exactly when nominal(k) <= now rounded down to a tick.
		t = t / s.tick * s.tick
	}
	n := uint64(float64(t)*s.rate/1e9) + 1
	// Floating point may be one off either way: settle it by nominal
	// itself, so that due and at always agree.
	for n > 0 && s.nominal(n-1) > t {
		n--
	}
	for s.nominal(n) <= t {
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
