//go:build linux

package executor

import (
	"context"
	"io/fs"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Stat returns the file's fs.FileInfo, from a STATX op. Its Sys method
// returns the *unix.Statx_t (on the Go backend: what os.File.Stat gives).
func (f *File) Stat() (fs.FileInfo, error) {
	if f.osf != nil {
		return f.osf.Stat()
	}
	st, err := f.statx(context.Background(), unix.STATX_BASIC_STATS)
	if err != nil {
		return nil, err
	}
	return newFileStat(filepath.Base(f.name), st), nil
}

// fileStat is the fs.FileInfo of a Statx_t.
type fileStat struct {
	name    string
	size    int64
	mode    fs.FileMode
	modTime time.Time
	sys     *unix.Statx_t
}

func newFileStat(name string, st *unix.Statx_t) *fileStat {
	fi := &fileStat{
		name:    name,
		size:    int64(st.Size),
		mode:    fs.FileMode(st.Mode & 0o777),
		modTime: time.Unix(st.Mtime.Sec, int64(st.Mtime.Nsec)),
		sys:     st,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		fi.mode |= fs.ModeDevice
	case unix.S_IFCHR:
		fi.mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		fi.mode |= fs.ModeDir
	case unix.S_IFIFO:
		fi.mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		fi.mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		fi.mode |= fs.ModeSocket
	}
	if st.Mode&unix.S_ISGID != 0 {
		fi.mode |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISUID != 0 {
		fi.mode |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		fi.mode |= fs.ModeSticky
	}
	return fi
}

func (fi *fileStat) Name() string       { return fi.name }
func (fi *fileStat) Size() int64        { return fi.size }
func (fi *fileStat) Mode() fs.FileMode  { return fi.mode }
func (fi *fileStat) ModTime() time.Time { return fi.modTime }
func (fi *fileStat) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileStat) Sys() any           { return fi.sys }
