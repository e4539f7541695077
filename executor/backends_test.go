//go:build linux

package executor

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// testBackends are the two backends every behaviour is tested on, with one
// test body: io_uring (Strict, so a refused ring fails the test rather than
// silently testing Go twice) and Go's runtime, as New returns it where
// io_uring is refused.
var testBackends = []struct {
	name string
	opts []Option
}{
	{"io_uring", []Option{WithStrict()}},
	{"go", []Option{withGoBackend()}},
}

// forEachBackend runs body as a subtest per backend, with a fresh Executor
// that is closed when the subtest ends.
func forEachBackend(t *testing.T, body func(t *testing.T, e *Executor), opts ...Option) {
	t.Helper()
	for _, b := range testBackends {
		t.Run(b.name, func(t *testing.T) {
			e, err := New(append(append([]Option{}, b.opts...), opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			want := BackendIOURing
			if b.name == "go" {
				want = BackendGo
			}
			if e.Backend() != want {
				t.Fatalf("backend %s, want %s", e.Backend(), want)
			}
			t.Cleanup(func() { e.Close() })
			body(t, e)
		})
	}
}

// funcLogger is a *slog.Logger that hands each record, formatted as
// "LEVEL message key=value ...", to f: for tests that count or read what
// the executor logs.
func funcLogger(f func(line string)) *slog.Logger {
	return slog.New(funcHandler(f))
}

type funcHandler func(line string)

func (funcHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h funcHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h(b.String())
	return nil
}
func (h funcHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h funcHandler) WithGroup(string) slog.Handler      { return h }
