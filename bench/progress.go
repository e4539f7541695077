package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// progress shows on stderr how far the suite is: a bar redrawn in place on
// a terminal, one line per measurement otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	total int

	mu        sync.Mutex
	done      int
	label     string
	stepStart time.Time
	stepLen   time.Duration
	start     time.Time
	stop      chan struct{}
	stopped   chan struct{}
}

func newProgress(w io.Writer, fd int, total int) *progress {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	p := &progress{w: w, tty: err == nil, total: total, start: time.Now(),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	go p.redraw()
	return p
}

// begin says a measurement expected to take about d has started.
func (p *progress) begin(label string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label, p.stepStart, p.stepLen = label, time.Now(), d
	if !p.tty {
		fmt.Fprintf(p.w, "[%*d/%d] %s\n", len(fmt.Sprint(p.total)), p.done+1, p.total, label)
	} else {
		p.draw()
	}
}

// end says the measurement begun last is over.
func (p *progress) end() { p.skip(1) }

// skip counts n measurements as done (or not to be made).
func (p *progress) skip(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = min(p.done+n, p.total)
	p.stepLen = 0
	if p.tty {
		p.draw()
	}
}

// note shows a label for work outside the counted measurements.
func (p *progress) note(label string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label, p.stepLen = label, 0
	if !p.tty {
		fmt.Fprintf(p.w, "       %s\n", label)
	} else {
		p.draw()
	}
}

// close removes the bar.
func (p *progress) close() {
	close(p.stop)
	<-p.stopped
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func (p *progress) redraw() {
	defer close(p.stopped)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			if p.tty {
				p.mu.Lock()
				p.draw()
				p.mu.Unlock()
			}
		}
	}
}

// draw writes the bar; p.mu is held.
func (p *progress) draw() {
	frac := 0.0
	if p.total > 0 {
		partial := 0.0
		if p.stepLen > 0 {
			partial = min(0.99, float64(time.Since(p.stepStart))/float64(p.stepLen))
		}
		frac = (float64(p.done) + partial) / float64(p.total)
	}
	const width = 30
	filled := int(frac * width)
	elapsed := time.Since(p.start)
	eta := "--"
	if frac > 0.02 {
		eta = (time.Duration(float64(elapsed)/frac) - elapsed).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %3.0f%% %d/%d  %s  (elapsed %s, left ~%s)",
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), 100*frac,
		p.done, p.total, p.label, elapsed.Round(time.Second), eta)
}
