package main

import (
	"context"
	"time"

	"github.com/kasync-go/kasync/executor"
)

// The proxy on the fast path (-mode handler): each inbound connection is a
// Handler's connection on one of the server's loops, and dials the upstream
// from that same loop (Server.Dial on c.Loop()), so that both ends of a
// pair live on one thread and forward to each other inline, with no
// goroutine and no lock:
//
//   - bytes received on one end are written to the other with
//     HConn.WriteNoCopy: sent from the receive buffer itself where it can
//     (the buffer goes back to the ring when that send ends, within the
//     turn), copied where it cannot;
//   - backpressure both ways: once the other end's queued output is over
//     the server's output limit, this end stops receiving (PauseRead), and
//     starts again when the other end's OnDrain says it is down to half;
//   - half-close carried through: both handlers are HalfClosers, so one
//     end's FIN (OnReadEOF) becomes the other end's CloseWrite, and each end
//     closes once it has both sent and received its FIN;
//   - the inbound end does not receive until the upstream is connected; a
//     failed dial closes it.

// fastProxy is the server's Handler: its connections are the inbound ones.
type fastProxy struct {
	upstream string
	limit    int           // the server's ServeOutputLimit
	timeout  time.Duration // for connecting to the upstream
}

// pair is an inbound connection and its upstream one.
type pair struct {
	p        *fastProxy
	in, out  *executor.HConn
	inClosed bool
	cancel   context.CancelFunc // the dial's timeout
}

// upstreamEnd is the Handler of a pair's upstream connection.
type upstreamEnd struct{ *pair }

func (p *fastProxy) OnOpen(c *executor.HConn) {
	pr := &pair{p: p, in: c}
	c.SetContext(pr)
	c.PauseRead() // until the upstream is there
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	pr.cancel = cancel
	if err := c.Server().Dial(ctx, c.Loop(), "tcp", p.upstream, upstreamEnd{pr}); err != nil {
		cancel()
		c.Close()
	}
}

func (p *fastProxy) OnData(c *executor.HConn, d []byte) int {
	pr := c.Context().(*pair)
	return pr.forward(c, pr.out, d)
}
func (p *fastProxy) OnDrain(c *executor.HConn)   { c.Context().(*pair).out.ResumeRead() }
func (p *fastProxy) OnReadEOF(c *executor.HConn) { c.Context().(*pair).out.CloseWrite() }
func (p *fastProxy) OnClose(c *executor.HConn, err error) {
	pr := c.Context().(*pair)
	pr.inClosed = true
	if pr.out != nil {
		pr.out.Close()
	}
}

func (u upstreamEnd) OnOpen(c *executor.HConn) {
	if u.inClosed { // the client left while we were connecting
		c.Close()
		return
	}
	u.cancel()
	u.out = c
	u.in.ResumeRead()
}
func (u upstreamEnd) OnData(c *executor.HConn, d []byte) int { return u.forward(c, u.in, d) }
func (u upstreamEnd) OnDrain(c *executor.HConn)              { u.in.ResumeRead() }
func (u upstreamEnd) OnReadEOF(c *executor.HConn)            { u.in.CloseWrite() }

// OnClose: the upstream end closed, or could not connect (then with the
// dial's error and no OnOpen before): the inbound end follows, once its
// queued output is sent.
func (u upstreamEnd) OnClose(c *executor.HConn, err error) {
	u.cancel()
	u.in.Close()
}

// forward writes d, received on src, to dst, and holds src's input while
// dst's output is over the limit.
func (pr *pair) forward(src, dst *executor.HConn, d []byte) int {
	if _, err := dst.WriteNoCopy(d); err != nil {
		src.Close()
		return len(d)
	}
	if dst.Queued() > pr.p.limit {
		src.PauseRead()
	}
	return len(d)
}

// serveHandler proxies connections on listen to upstream on the fast path
// until ctx is done.
func serveHandler(ctx context.Context, listen, upstream string, loops int, ready func(addr string)) error {
	e, err := executor.New()
	if err != nil {
		return err
	}
	defer e.Close()
	const limit = 256 << 10
	p := &fastProxy{upstream: upstream, limit: limit, timeout: 10 * time.Second}
	s, err := e.Serve("tcp", listen, p, executor.ServeLoops(loops), executor.ServeOutputLimit(limit))
	if err != nil {
		return err
	}
	ready(s.Addr().String())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	s.Shutdown(sctx)
	return e.Close()
}
