// Cat concatenates files to standard output, like cat(1), reading them with
// kasync's io_uring Files: each file is copied with Executor.CopyFile, which
// keeps several reads and writes in flight when standard output is a file,
// and copies in order when it is a pipe or a terminal.
//
//	cat [FILE]...
//
// With no FILE, or where FILE is -, it reads standard input. A file that
// cannot be read is reported on standard error ("cat: NAME: no such file or
// directory") and skipped; the exit status is then 1.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"syscall"

	"github.com/kasync-go/kasync/executor"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	e, err := executor.New(executor.WithLoops(1), executor.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cat:", err)
		return 1
	}
	defer e.Close()
	out := e.NewFile(1, "/dev/stdout")
	defer out.Close()
	if len(args) == 0 {
		args = []string{"-"}
	}
	c := &cat{e: e, out: out}
	status := 0
	for _, name := range args {
		if err := c.file(name); err != nil {
			if errors.Is(err, syscall.EPIPE) {
				return 1 // the reader went away (cat | head): stop quietly
			}
			fmt.Fprintf(os.Stderr, "cat: %s: %v\n", name, reason(err))
			status = 1
			var pe *fs.PathError
			if errors.As(err, &pe) && pe.Path == out.Name() {
				return status // the output is gone: stop
			}
		}
	}
	return status
}

type cat struct {
	e     *executor.Executor
	out   *executor.File
	stdin *executor.File // made on the first "-", kept for the next
}

// file copies one file (or standard input, for "-") to the output.
func (c *cat) file(name string) error {
	if name == "-" {
		if c.stdin == nil {
			c.stdin = c.e.NewFile(0, "/dev/stdin")
		}
		_, err := c.e.CopyFile(c.out, c.stdin)
		return err
	}
	f, err := c.e.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = c.e.CopyFile(c.out, f)
	return err
}

// reason is the errno's text without the operation and path, as cat prints it.
func reason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
