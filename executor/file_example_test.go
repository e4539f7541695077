//go:build linux

package executor_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kasync-go/kasync/executor"
)

// exampleFile writes content to a new file in a temporary directory and
// returns its name and a function that removes it.
func exampleFile(content string) (string, func()) {
	dir, err := os.MkdirTemp("", "kasync-example")
	if err != nil {
		panic(err)
	}
	name := filepath.Join(dir, "greeting.txt")
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		panic(err)
	}
	return name, func() { os.RemoveAll(dir) }
}

func ExampleExecutor_Open() {
	name, cleanup := exampleFile("hello, io_uring\n")
	defer cleanup()

	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()

	f, err := e.Open(name)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	fmt.Printf("%q %v\n", b, err)

	_, err = e.Open(name + ".missing")
	fmt.Println(errors.Is(err, fs.ErrNotExist))
	// Output:
	// "hello, io_uring\n" <nil>
	// true
}

func ExampleFile_ReadAt() {
	name, cleanup := exampleFile("0123456789")
	defer cleanup()

	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	f, err := e.Open(name)
	if err != nil {
		panic(err)
	}
	defer f.Close()

	buf := make([]byte, 4)
	n, err := f.ReadAt(buf, 3)
	fmt.Printf("%d %q %v\n", n, buf[:n], err)
	n, err = f.ReadAt(buf, 8) // only two bytes left: a short read ends with io.EOF
	fmt.Printf("%d %q %v\n", n, buf[:n], err)
	// Output:
	// 4 "3456" <nil>
	// 2 "89" EOF
}

func ExampleFile_ReadBatch() {
	name, cleanup := exampleFile("the quick brown fox jumps over the lazy dog")
	defer cleanup()

	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	f, err := e.Open(name)
	if err != nil {
		panic(err)
	}
	defer f.Close()

	// Three reads, submitted with one io_uring_enter.
	reqs := []executor.ReadRequest{
		{Buf: make([]byte, 5), Off: 4},
		{Buf: make([]byte, 3), Off: 16},
		{Buf: make([]byte, 8), Off: 40},
	}
	err = f.ReadBatch(reqs)
	fmt.Println("batch:", err)
	for _, r := range reqs {
		fmt.Printf("%d %q %v\n", r.N, r.Buf[:r.N], r.Err)
	}
	// Output:
	// batch: <nil>
	// 5 "quick" <nil>
	// 3 "fox" <nil>
	// 3 "dog" EOF
}
