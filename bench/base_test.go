package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWithBase(t *testing.T) {
	list, err := selectServers("net,kasync-conn,kasync-handler,kasync-http")
	if err != nil {
		t.Fatal(err)
	}
	got, err := withBase(list)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	want := []string{"net", "kasync-conn", "kasync-conn@base", "kasync-handler", "kasync-handler@base", "kasync-http", "kasync-http@base"}
	if !slices.Equal(names, want) {
		t.Fatalf("servers %v, want %v", names, want)
	}
	conn, connBase, handlerBase := got[1], got[2], got[4]
	if connBase.BaseOf != "kasync-conn" || connBase.Baseline || connBase.Kind != conn.Kind || !slices.Equal(connBase.Args, conn.Args) {
		t.Errorf("twin %+v of %+v", connBase, conn)
	}
	if connBase.Binary == conn.Binary || connBase.Binary.Name != "kasync-echo@base" || connBase.Binary.Pkg != conn.Binary.Pkg || !connBase.Binary.InRoot {
		t.Errorf("twin's binary %+v", connBase.Binary)
	}
	if handlerBase.Binary != connBase.Binary {
		t.Error("the twins of one program do not share one twin program")
	}
	setBaseSrc(got, "/base/tree")
	if connBase.Binary.Src != "/base/tree" || conn.Binary.Src != "" || binKasyncEcho.Src != "" {
		t.Errorf("Src: twin %q, current %q", connBase.Binary.Src, conn.Binary.Src)
	}
	if _, err := withBase(list[:1]); err == nil {
		t.Error("-base without a kasync server: no error")
	}
}

func TestBaseEnv(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "src")
	mod := filepath.Join(tree, "sub")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tree, ".git"), []byte("gitdir: elsewhere\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "go.work"), nil, 0o644) // above the worktree: not its own
	env := baseEnv([]string{"HOME=/h", "GOWORK=/current/go.work", "GOFLAGS=-buildvcs=false -modfile=/current/go.mod"}, mod)
	want := []string{"HOME=/h", "GOFLAGS=-buildvcs=false", "GOWORK=off"}
	if !slices.Equal(env, want) {
		t.Errorf("env %q, want %q", env, want)
	}
	os.WriteFile(filepath.Join(tree, "go.work"), nil, 0o644)
	if env := baseEnv(nil, mod); !slices.Equal(env, []string{"GOWORK=" + filepath.Join(tree, "go.work")}) {
		t.Errorf("with the worktree's own go.work: %q", env)
	}
}

// TestSuiteWithBase runs a server and its @base twin (both this test
// binary): each run measures the two one after the other, and the report
// gives the ratio of one to the other.
func TestSuiteWithBase(t *testing.T) {
	t.Setenv(testServerEnv, "echo")
	self := filepath.Base(os.Args[0])
	srv := Server{Name: "kasync-x", Kind: KindEcho, Binary: &Binary{Name: self, InRoot: true}}
	list, err := withBase([]Server{selfServer("base", true), srv})
	if err != nil {
		t.Fatal(err)
	}
	// The twin's program is the test binary too: name it so.
	list[2].Binary.Name = self
	opts := Options{
		Scenarios: []Scenario{{Name: "echo-test", Kind: KindEcho, Conns: 2, Size: 64}},
		Servers:   list,
		Runs:      3, Warmup: 20 * time.Millisecond, Duration: 60 * time.Millisecond,
		Base: "HEAD~1 (0123456789ab)",
	}
	prog := newProgress(io.Discard, -1, steps(opts, nil))
	s := runSuite(opts, filepath.Dir(os.Args[0]), nil, prog)
	prog.close()
	if len(s.Cells) != 3 {
		t.Fatalf("%d cells", len(s.Cells))
	}
	cur, twin := s.Cells[1], s.Cells[2]
	if twinOf(s.Cells, cur) != twin || twinOf(s.Cells, twin) != nil || twinOf(s.Cells, s.Cells[0]) != nil {
		t.Fatal("twinOf does not pair kasync-x with kasync-x@base")
	}
	for _, c := range s.Cells {
		if c.Status != "" || len(c.Samples) != opts.Runs {
			t.Fatalf("%s: status %q, %d samples", c.Server.Name, c.Status, len(c.Samples))
		}
	}
	// Alternating run by run: cur's run i, twin's run i, cur's run i+1, ...
	for i := range opts.Runs {
		if !twin.Samples[i].Start.After(cur.Samples[i].Start) {
			t.Errorf("run %d: the twin ran before its server", i)
		}
		if i+1 < opts.Runs && !cur.Samples[i+1].Start.After(twin.Samples[i].Start) {
			t.Errorf("run %d: the server's next run came before the twin's run", i)
		}
	}
	if _, _, _, ok := pairedRatio(cur, twin); !ok {
		t.Error("no ratio to the twin")
	}
	var text bytes.Buffer
	writeText(&text, s)
	for _, want := range []string{"vs @base", "kasync-x@base", "HEAD~1 (0123456789ab)"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, text.String())
		}
	}
	var md strings.Builder
	writeMarkdown(&md, s, "")
	if !strings.Contains(md.String(), "| vs @base [min-max] |") {
		t.Errorf("markdown lacks the vs @base column:\n%s", md.String())
	}
	// Without twins the column is not there.
	s.Cells = s.Cells[:1]
	text.Reset()
	writeText(&text, s)
	if strings.Contains(text.String(), "vs @base") {
		t.Errorf("vs @base without -base:\n%s", text.String())
	}
	t.Log("\n" + text.String())
}
