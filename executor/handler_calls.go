package executor

import (
	"runtime/debug"
)

// Handler calls, each contained: a panic closes the connection and is
// reported; the loop goes on.

func (l *hloop) callOpen(c *HConn) {
	defer l.recoverConn(c)
	c.handler().OnOpen(c)
}

func (l *hloop) callData(c *HConn, data []byte) (n int) {
	n = -1
	defer l.recoverConn(c)
	n = c.handler().OnData(c, data)
	return max(n, 0)
}

func (l *hloop) callClose(c *HConn) {
	defer l.recoverConn(nil)
	c.handler().OnClose(c, c.err)
}

func (l *hloop) callDrain(c *HConn) {
	d := l.drainer
	if c.h != nil {
		d, _ = c.h.(Drainer)
	}
	if d == nil || c.st&hsClosing != 0 {
		return
	}
	defer l.recoverConn(c)
	d.OnDrain(c)
}

func (l *hloop) callShutdown(c *HConn) {
	n := l.notifier
	if c.h != nil {
		n, _ = c.h.(ShutdownNotifier)
	}
	if n == nil {
		return
	}
	defer l.recoverConn(c)
	n.OnShutdown(c)
}

// bindHandler finds the Handler's optional interfaces once.
func (l *hloop) bindHandler() {
	l.tick, _ = l.h.(Ticker)
	l.drainer, _ = l.h.(Drainer)
	l.notifier, _ = l.h.(ShutdownNotifier)
}

func (l *hloop) callDo(c *HConn, f func(*HConn)) {
	defer l.recoverConn(c)
	f(c)
}

// recoverConn is deferred around handler calls.
func (l *hloop) recoverConn(c *HConn) {
	v := recover()
	if v == nil {
		return
	}
	p := &HandlerPanic{Value: v, Stack: debug.Stack()}
	l.st[ctrPanics]++
	func() {
		defer func() { recover() }() // a panicking reporter is not our loop's end
		l.cfg.onPanic(c, p)
	}()
	if c != nil {
		l.closeConn(c, p, true)
	}
}

func (l *hloop) callReadEOF(c *HConn, hc HalfCloser) {
	defer l.recoverConn(c)
	hc.OnReadEOF(c)
}
