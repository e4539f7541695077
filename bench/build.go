package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Dirs are where the suite finds its sources and puts its results.
type Dirs struct {
	Bench string // the bench module
	Root  string // kasync's module, the parent of Bench
	Bin   string // built server programs (a temporary directory)
}

// findDirs locates the bench module from the working directory: the
// directory itself, its bench/ subdirectory, or a parent.
func findDirs() (Dirs, error) {
	wd, err := os.Getwd()
	if err != nil {
		return Dirs{}, err
	}
	const module = "module github.com/kasync-go/kasync/bench"
	candidates := []string{filepath.Join(wd, "bench")}
	for d := wd; ; d = filepath.Dir(d) {
		candidates = append(candidates, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for _, d := range candidates {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.Contains(b, []byte(module)) {
			return Dirs{Bench: d, Root: filepath.Dir(d)}, nil
		}
	}
	return Dirs{}, fmt.Errorf("cannot find the bench module (%s) from %s: run from kasync's bench directory", module, wd)
}

// goTool returns the go command that builds the servers.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// buildServers builds every binary the servers need into dirs.Bin, in
// parallel: theirs and their kinds' upstreams. A required binary that does
// not build is an error; an optional one is reported in the returned map
// (binary name: why it is not available).
func buildServers(dirs Dirs, list []Server) (map[string]string, error) {
	seen := map[string]bool{}
	var required, optional []*Binary
	for _, s := range list {
		for _, b := range append([]*Binary{s.Binary}, upstreams[s.Kind]...) {
			if seen[b.Name] {
				continue
			}
			seen[b.Name] = true
			if b.Optional {
				optional = append(optional, b)
			} else {
				required = append(required, b)
			}
		}
	}
	unavailable := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var reqErr error
	if len(required) > 0 {
		wg.Go(func() {
			if err := goBuild(dirs, required); err != nil {
				reqErr = err
			}
		})
	}
	for _, b := range optional {
		wg.Go(func() {
			build := goBuild
			if b.CSource != "" {
				build = gccBuild
			}
			if err := build(dirs, []*Binary{b}); err != nil {
				mu.Lock()
				unavailable[b.Name] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return unavailable, reqErr
}

// goBuild builds bins, which live in one module, with one go build.
func goBuild(dirs Dirs, bins []*Binary) error {
	moduleDir := dirs.Bench
	if bins[0].InRoot {
		moduleDir = dirs.Root
	}
	env := os.Environ()
	if bins[0].Src != "" {
		// The base revision, with its own go.mod.
		moduleDir = bins[0].Src
		env = baseEnv(env, moduleDir)
	}
	for _, b := range bins {
		dir := filepath.Join(moduleDir, b.Pkg)
		if _, err := os.Stat(dir); err != nil {
			if rel, err := filepath.Rel(dirs.Bench, dir); err == nil {
				dir = rel
			}
			return fmt.Errorf("%s is missing", dir)
		}
	}
	var out string
	if len(bins) == 1 {
		out = filepath.Join(dirs.Bin, bins[0].Name)
	} else {
		out = dirs.Bin + string(filepath.Separator) // one binary per package, named after it
	}
	args := []string{"build", "-o", out}
	for _, b := range bins {
		args = append(args, b.Pkg)
	}
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = moduleDir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := runBuild(cmd); err != nil {
		// The first two compiler messages, on one line for the table.
		var lines []string
		for line := range strings.Lines(stderr.String()) {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				lines = append(lines, line)
			}
		}
		if len(lines) > 2 {
			lines = append(lines[:2], "...")
		}
		where := ""
		if bins[0].Src != "" {
			where = " in the -base worktree"
		}
		return fmt.Errorf("go build %s%s failed (%v): %s", strings.Join(args[3:], " "), where, err, strings.Join(lines, "; "))
	}
	return nil
}

// gccBuild builds bins[0], a C program on liburing, with gcc.
func gccBuild(dirs Dirs, bins []*Binary) error {
	b := bins[0]
	src := filepath.Join(dirs.Bench, b.CSource)
	cmd := exec.Command("gcc", "-O2", "-o", filepath.Join(dirs.Bin, b.Name), src, "-luring")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := runBuild(cmd); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		return fmt.Errorf("gcc %s failed (%v; needs gcc and liburing-dev): %s", b.CSource, err, msg)
	}
	return nil
}

// builds are the compilers running, each in a process group of its own, so
// that an interrupt can end them (and what they run) before their output and
// sources are removed.
var builds struct {
	sync.Mutex
	running map[*exec.Cmd]chan struct{} // closed when it has been waited for
	stopped bool
}

// runBuild runs cmd as a build that stopBuilds can end.
func runBuild(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	builds.Lock()
	if builds.stopped {
		builds.Unlock()
		return errors.New("interrupted")
	}
	if err := cmd.Start(); err != nil {
		builds.Unlock()
		return err
	}
	done := make(chan struct{})
	if builds.running == nil {
		builds.running = map[*exec.Cmd]chan struct{}{}
	}
	builds.running[cmd] = done
	builds.Unlock()
	err := cmd.Wait()
	builds.Lock()
	delete(builds.running, cmd)
	builds.Unlock()
	close(done)
	return err
}

// stopBuilds kills every running build's process group, waits (up to a
// few seconds) until they are gone, and lets no new one start.
func stopBuilds() {
	builds.Lock()
	builds.stopped = true
	var waits []chan struct{}
	for cmd, done := range builds.running {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		waits = append(waits, done)
	}
	builds.Unlock()
	timeout := time.After(3 * time.Second)
	for _, done := range waits {
		select {
		case <-done:
		case <-timeout:
			return
		}
	}
}

// buildsStopped reports whether stopBuilds was called.
func buildsStopped() bool {
	builds.Lock()
	defer builds.Unlock()
	return builds.stopped
}
