// Cp copies a file, like cp(1) without options, on kasync's Files:
// Executor.CopyFileProgress has the kernel copy with copy_file_range, and
// where it cannot, keeps eight 256 KiB reads and writes in flight on the ring.
//
//	cp SRC DST
//
// DST gets SRC's bytes and mode (permission, setuid, setgid and sticky bits).
// If DST is a directory, the copy goes to DST/basename(SRC). For files over
// 64 MiB a progress bar is drawn on standard error when it is a terminal.
package main

import (
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kasync-go/kasync/executor"
)

// progressMin is the size from which cp draws a progress bar.
const progressMin = 64 << 20

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: cp SRC DST")
		return 2
	}
	if err := cp(args[0], args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "cp:", err)
		return 1
	}
	return 0
}

func cp(srcName, dstName string) error {
	e, err := executor.New(executor.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return err
	}
	defer e.Close()

	src, err := e.Open(srcName)
	if err != nil {
		return err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s: is a directory (not copied)", srcName)
	}
	if st, err := os.Stat(dstName); err == nil && st.IsDir() {
		dstName = filepath.Join(dstName, filepath.Base(srcName))
	}
	if dst, err := os.Stat(dstName); err == nil {
		if srcSt, err := os.Stat(srcName); err == nil && os.SameFile(srcSt, dst) {
			return fmt.Errorf("%s and %s are the same file", srcName, dstName)
		}
	}

	dst, err := e.OpenFile(dstName, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	var progress func(int64)
	if fi.Size() > progressMin && isTerminal(os.Stderr) {
		bar := newBar(os.Stderr, fi.Size())
		progress = bar.update
		defer bar.done()
	}
	_, err = e.CopyFileProgress(dst, src, progress)
	if err == nil {
		// The mode as it was, whatever the umask; and the setuid, setgid and
		// sticky bits, which open(2) does not set.
		err = dst.Chmod(fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

// isTerminal reports whether f is a terminal (a character device: close
// enough for a progress bar, and the same test on every OS).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// bar draws "[#####.....]  45%  460.0 MiB / 1.0 GiB  850.3 MiB/s" in place,
// at most every 100 ms.
type bar struct {
	w     io.Writer
	total int64
	start time.Time
	last  time.Time
	cur   int64
}

func newBar(w io.Writer, total int64) *bar {
	now := time.Now()
	return &bar{w: w, total: total, start: now, last: now.Add(-time.Second)}
}

func (b *bar) update(copied int64) {
	b.cur = copied
	if now := time.Now(); now.Sub(b.last) >= 100*time.Millisecond {
		b.last = now
		b.draw()
	}
}

func (b *bar) draw() {
	const width = 30
	frac := 1.0
	if b.total > 0 {
		frac = min(float64(b.cur)/float64(b.total), 1)
	}
	fill := int(frac * width)
	rate := float64(b.cur) / max(time.Since(b.start).Seconds(), 1e-9)
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%%  %s / %s  %s/s ", strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		frac*100, size(float64(b.cur)), size(float64(b.total)), size(rate))
}

func (b *bar) done() {
	b.draw()
	fmt.Fprintln(b.w)
}

func size(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
