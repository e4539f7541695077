package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
)

// ErrStopSelf is returned by Task.Stop called from inside the task itself,
// which would otherwise wait for itself forever.
var ErrStopSelf = errors.New("executor: Task.Stop called from inside the task")

// Task is a function running on an Executor (kasync's spawned task). Its
// context is cancelled by Stop and by the executor's Close.
type Task struct {
	e      *Executor
	cancel context.CancelCauseFunc
	done   chan struct{}
	err    error
	goid   atomic.Uint64
}

// PanicError is what Wait returns for a task that panicked.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("executor: task panicked: %v", p.Value) }

// Spawn runs f in a new task. f should return when ctx is done. It fails
// with ErrClosed once Close has begun.
func (e *Executor) Spawn(f func(ctx context.Context) error) (*Task, error) {
	ctx, cancel := context.WithCancelCause(context.Background())
	t := &Task{e: e, cancel: cancel, done: make(chan struct{})}
	e.mu.Lock()
	select {
	case <-e.closing:
		e.mu.Unlock()
		cancel(ErrClosed)
		return nil, ErrClosed
	default:
	}
	e.tasks[t] = struct{}{}
	e.mu.Unlock()
	go t.run(ctx, f)
	return t, nil
}

func (t *Task) run(ctx context.Context, f func(context.Context) error) {
	t.goid.Store(currentGoroutine())
	defer func() {
		if v := recover(); v != nil {
			t.err = &PanicError{Value: v, Stack: debug.Stack()}
		}
		t.cancel(context.Canceled)
		t.e.mu.Lock()
		delete(t.e.tasks, t)
		t.e.mu.Unlock()
		close(t.done)
	}()
	t.err = f(ctx)
}

// Wait waits for the task to return and returns its error (a *PanicError if
// it panicked).
func (t *Task) Wait() error {
	<-t.done
	return t.err
}

// Done is closed when the task has returned.
func (t *Task) Done() <-chan struct{} { return t.done }

// Stop cancels the task's context and waits for it to return, returning
// what Wait returns. Called from inside the task it only cancels, and
// returns ErrStopSelf.
func (t *Task) Stop() error {
	t.cancel(context.Canceled)
	if t.goid.Load() == currentGoroutine() {
		return ErrStopSelf
	}
	return t.Wait()
}

// currentGoroutine returns the calling goroutine's id. Only Stop and Close
// use it, to refuse to wait for themselves; it is not on any hot path.
func currentGoroutine() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
