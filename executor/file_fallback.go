//go:build linux

package executor

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// openGo is OpenFile on the Go backend (io_uring refused): the File wraps an
// *os.File, and every method forwards to it. O_DIRECT alignment is still
// checked before the call, so both backends report it alike.
func (e *Executor) openGo(name string, flag int, perm os.FileMode) (*File, error) {
	f, err := e.openOS(name, flag, perm)
	if err == nil && f.direct {
		f.learnDirectAlign()
	}
	return f, err
}

// newFileGo makes a File of osf, tracked by the executor; if the executor
// is closing, the file is closed at once and its calls fail with ErrClosed.
func (e *Executor) newFileGo(osf *os.File, flag int) *File {
	g := &goFile{osf: osf, e: e}
	if err := e.track(g); err != nil {
		g.closeByExecutor()
	}
	f := &File{name: osf.Name(), osf: osf, gof: g, appendMode: flag&os.O_APPEND != 0, direct: flag&unix.O_DIRECT != 0}
	// As on io_uring, a File dropped unclosed closes its descriptor.
	runtime.AddCleanup(f, func(g *goFile) { g.closeByOwner() }, g)
	return f
}

// newGoFD is NewFile's *os.File on the Go backend. A pipe or socket is put
// in non-blocking mode first, so that it is on Go's poller and Close (the
// file's or the executor's) stops a blocked Read or Write.
func newGoFD(fd uintptr, name string) *os.File {
	var st unix.Stat_t
	if unix.Fstat(int(fd), &st) == nil {
		if m := st.Mode & unix.S_IFMT; m == unix.S_IFIFO || m == unix.S_IFSOCK {
			unix.SetNonblock(int(fd), true)
		}
	}
	return os.NewFile(fd, name)
}
