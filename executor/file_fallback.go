package executor

import (
	"os"

	"golang.org/x/sys/unix"
)

// openGo is OpenFile on the Go backend (io_uring refused): the File wraps an
// *os.File, and every method forwards to it. O_DIRECT alignment is still
// checked before the call, so both backends report it alike.
func openGo(name string, flag int, perm os.FileMode) (*File, error) {
	osf, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	f := newFileGo(osf, flag)
	if f.direct {
		f.learnDirectAlign()
	}
	return f, nil
}

func newFileGo(osf *os.File, flag int) *File {
	return &File{name: osf.Name(), osf: osf, appendMode: flag&os.O_APPEND != 0, direct: flag&unix.O_DIRECT != 0}
}
