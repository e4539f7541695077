package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// baseSuffix names a server's twin built from the -base revision.
const baseSuffix = "@base"

// withBase returns list with, right after each kasync server (one built from
// kasync's own module, examples/), its twin "<name>@base": the same program
// and flags, to be built from the -base revision. Twins of servers that share
// a program share one twin program, so it is built once. Adjacent in the
// list, a server and its twin are measured one after the other in every run
// (runScenario: A B A B ...). It is an error if no server has a twin.
func withBase(list []Server) ([]Server, error) {
	bins := map[*Binary]*Binary{}
	var out []Server
	twins := 0
	for _, s := range list {
		out = append(out, s)
		if !s.Binary.InRoot || s.BaseOf != "" {
			continue
		}
		b := bins[s.Binary]
		if b == nil {
			c := *s.Binary
			c.Name += baseSuffix
			c.Optional = true // the base revision may not have it
			b = &c
			bins[s.Binary] = b
		}
		twin := s
		twin.Name += baseSuffix
		twin.Baseline = false
		twin.BaseOf = s.Name
		twin.Binary = b
		twin.Args = append([]string(nil), s.Args...)
		out = append(out, twin)
		twins++
	}
	if twins == 0 {
		return nil, fmt.Errorf("-base: none of the selected servers is built from kasync's examples/ (the kasync-* ones)")
	}
	return out, nil
}

// setBaseSrc makes every @base twin in list build from dir, kasync's module
// in the base worktree.
func setBaseSrc(list []Server, dir string) {
	for _, s := range list {
		if s.BaseOf != "" {
			s.Binary.Src = dir
		}
	}
}

// baseTree is a detached git worktree of the -base revision, in a temporary
// directory of its own.
type baseTree struct {
	Rev    string // as given
	Commit string // what it resolved to
	Module string // kasync's module in the worktree

	repo string // the repository's top level
	tmp  string // the temporary directory holding the worktree
	dir  string // the worktree
	once sync.Once
}

// newBaseTree resolves rev in the repository holding kasync's module root
// and makes a temporary directory for its worktree; add checks it out.
// remove must be called in any case, once newBaseTree succeeded.
func newBaseTree(root, rev string) (*baseTree, error) {
	if rev == "" || strings.HasPrefix(rev, "-") {
		return nil, fmt.Errorf("-base %q: not a revision", rev)
	}
	top, err := git(root, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("-base: %s is not in a git repository: %w", root, err)
	}
	commit, err := git(top, "rev-parse", "--verify", "--quiet", rev+"^{commit}")
	if err != nil {
		return nil, fmt.Errorf("-base %s: not a commit of %s", rev, top)
	}
	// root may be a symlinked path: compare it with the top level resolved.
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(top, realRoot)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("-base: kasync's module %s is not inside the repository %s", root, top)
	}
	tmp, err := os.MkdirTemp("", "kasync-bench-base-")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(tmp, "src")
	return &baseTree{Rev: rev, Commit: commit, Module: filepath.Join(dir, rel), repo: top, tmp: tmp, dir: dir}, nil
}

// add checks the revision out, detached, into the temporary directory.
func (t *baseTree) add() error {
	if _, err := git(t.repo, "worktree", "add", "--detach", t.dir, t.Commit); err != nil {
		return fmt.Errorf("-base %s: %w", t.Rev, err)
	}
	if _, err := os.Stat(filepath.Join(t.Module, "go.mod")); err != nil {
		return fmt.Errorf("-base %s: no go.mod at %s in that revision", t.Rev, t.Module)
	}
	return nil
}

// remove deletes the worktree and its temporary directory and prunes the
// repository's record of it; safe to call more than once, and concurrently.
func (t *baseTree) remove() {
	t.once.Do(func() {
		if _, err := os.Stat(t.dir); err == nil {
			git(t.repo, "worktree", "remove", "--force", t.dir)
		}
		os.RemoveAll(t.tmp)
		if _, err := git(t.repo, "worktree", "prune"); err != nil {
			fmt.Fprintln(os.Stderr, "bench: warning: git worktree prune:", err)
		}
	})
}

// String is the revision as the report gives it: "HEAD~2 (0123abcd4567)".
func (t *baseTree) String() string {
	short := t.Commit
	if len(short) > 12 {
		short = short[:12]
	}
	if strings.HasPrefix(t.Commit, t.Rev) {
		return short
	}
	return fmt.Sprintf("%s (%s)", t.Rev, short)
}

// git runs git -C dir args... and returns its output, trimmed.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// baseEnv is the environment to build a module of the base worktree in: its
// own module and nothing of the current tree's. A -modfile in GOFLAGS would
// name the current tree's go.mod, so it goes; GOWORK is the worktree's own
// go.work if it has one at or above dir, up to the worktree's top (where
// .git is), else off.
func baseEnv(environ []string, dir string) []string {
	var out []string
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "GOWORK":
			continue
		case "GOFLAGS":
			var keep []string
			for _, f := range strings.Fields(v) {
				if !strings.HasPrefix(f, "-modfile") && !strings.HasPrefix(f, "--modfile") {
					keep = append(keep, f)
				}
			}
			kv = "GOFLAGS=" + strings.Join(keep, " ")
		}
		out = append(out, kv)
	}
	work := "off"
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			work = filepath.Join(d, "go.work")
			break
		}
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil || d == filepath.Dir(d) {
			break
		}
	}
	return append(out, "GOWORK="+work)
}
