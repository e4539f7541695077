//go:build linux

package executor

import (
	"context"
	"os"
	"syscall"

	"github.com/kasync-go/kasync/ring"
	"golang.org/x/sys/unix"
)

// A File's calls on storage and metadata rather than its bytes: syncing,
// size, space and mode.

// Sync commits the file's data and metadata to storage (FSYNC).
func (f *File) Sync() error {
	if f.osf != nil {
		return f.gof.fileErr(f.osf.Sync())
	}
	_, err := f.run(context.Background(), "sync", func(s *ring.SQE, fd int) { s.PrepFsync(fd, 0) })
	return err
}

// Datasync commits the file's data, and only the metadata needed to read it
// back, to storage (FSYNC with FsyncDatasync: fdatasync).
func (f *File) Datasync() error {
	if f.osf != nil {
		return f.gof.fileErr(ignoringEINTR(func() error { return unix.Fdatasync(int(f.osf.Fd())) }, f, "datasync"))
	}
	_, err := f.run(context.Background(), "datasync", func(s *ring.SQE, fd int) { s.PrepFsync(fd, ring.FsyncDatasync) })
	return err
}

// Truncate changes the file's size, with an FTRUNCATE op where the kernel
// has it (Linux 6.9) and ftruncate(2) otherwise.
func (f *File) Truncate(size int64) error {
	if f.osf != nil {
		return f.gof.fileErr(f.osf.Truncate(size))
	}
	if size < 0 {
		return f.pathErr("truncate", syscall.EINVAL)
	}
	l := f.sfd.l
	l.mu.Lock()
	hasOp := !l.closed && l.r.Supports(ring.OpFtruncate)
	l.mu.Unlock()
	if hasOp {
		// The ring package has no prep helper for it: fd, and the length in off.
		_, err := f.run(context.Background(), "truncate", func(s *ring.SQE, fd int) {
			*s = ring.SQE{Opcode: ring.OpFtruncate, Fd: int32(fd), Off: uint64(size)}
		})
		return err
	}
	if err := f.sfd.acquire(); err != nil {
		return f.pathErr("truncate", fileErr(err))
	}
	defer f.sfd.releaseRef()
	return ignoringEINTR(func() error { return unix.Ftruncate(f.sfd.fd, size) }, f, "truncate")
}

// Fallocate is fallocate(2) with mode (0, or unix.FALLOC_FL_* flags): with
// mode 0 it reserves [off, off+length) on storage and grows the file to cover
// it, so later writes there cannot fail for want of space.
func (f *File) Fallocate(mode uint32, off, length int64) error {
	if f.osf != nil {
		return f.gof.fileErr(ignoringEINTR(func() error { return unix.Fallocate(int(f.osf.Fd()), mode, off, length) }, f, "fallocate"))
	}
	_, err := f.run(context.Background(), "fallocate", func(s *ring.SQE, fd int) { s.PrepFallocate(fd, mode, off, length) })
	return err
}

// Chmod changes the file's mode, like os.File.Chmod.
func (f *File) Chmod(mode os.FileMode) error {
	if f.osf != nil {
		return f.gof.fileErr(f.osf.Chmod(mode))
	}
	if err := f.sfd.acquire(); err != nil {
		return f.pathErr("chmod", fileErr(err))
	}
	defer f.sfd.releaseRef()
	return ignoringEINTR(func() error { return unix.Fchmod(f.sfd.fd, sysMode(mode)) }, f, "chmod")
}

func ignoringEINTR(call func() error, f *File, op string) error {
	for {
		err := call()
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return f.pathErr(op, err)
		}
		return nil
	}
}
