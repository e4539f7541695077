package executor

import (
	"time"
)

// A loop's timers: the handler's ticks, lingering closes, the accept
// retry and the connections' timeouts, and how long the loop may wait for
// them.

// timersActive reports whether anything waits for a time: ticks, lingering
// closes, an accept retry, connection timeouts.
func (l *hloop) timersActive() bool {
	return !l.nextTick.IsZero() || len(l.linger) > 0 || l.acceptErr || len(l.dl.heap) > 0
}

func (l *hloop) waitTimeout() (time.Duration, bool) {
	if !l.timersActive() {
		return 0, false
	}
	now := monoTime(l.turnNow()) // read once a turn, after its wait
	var at time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	earliest(l.nextTick)
	if l.acceptErr {
		earliest(l.acceptAt)
	}
	for _, c := range l.linger {
		earliest(c.lingerAt)
	}
	if t, ok := l.dlNext(); ok {
		earliest(t)
	}
	return max(at.Sub(now), 0), true
}

func (l *hloop) runTimers(now time.Time) {
	if !l.nextTick.IsZero() && !now.Before(l.nextTick) {
		l.runTick(now)
	}
	if l.acceptErr && !now.Before(l.acceptAt) {
		l.acceptErr = false
	}
	l.runDeadlines(now)
	for i := 0; i < len(l.linger); {
		c := l.linger[i]
		if c.st&hsDone == 0 && now.Before(c.lingerAt) {
			i++
			continue
		}
		if c.st&hsDone == 0 {
			l.closeConn(c, c.err, true) // give up on sending
		}
		c.st &^= hsLinger
		last := len(l.linger) - 1
		l.linger[i] = l.linger[last]
		l.linger[last] = nil
		l.linger = l.linger[:last]
	}
}

func (l *hloop) runTick(now time.Time) {
	l.nextTick = time.Time{}
	defer l.recoverConn(nil)
	if d := l.tick.OnTick(l.id, now); d > 0 {
		l.nextTick = now.Add(d)
	}
}
