//go:build linux

package executor

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestTaskWaitReturnsError(t *testing.T) {
	e := newTestExecutor(t)
	want := errors.New("boom")
	tk, err := e.Spawn(func(context.Context) error { return want })
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Wait(); err != want {
		t.Fatalf("Wait = %v, want %v", err, want)
	}
}

func TestTaskPanicIsContained(t *testing.T) {
	e := newTestExecutor(t)
	tk, _ := e.Spawn(func(context.Context) error { panic("kaboom") })
	var pe *PanicError
	if err := tk.Wait(); !errors.As(err, &pe) || pe.Value != "kaboom" || len(pe.Stack) == 0 {
		t.Fatalf("Wait = %v", err)
	}
	// The executor keeps running.
	if err := e.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

func TestTaskStop(t *testing.T) {
	e := newTestExecutor(t)
	tk, _ := e.Spawn(func(ctx context.Context) error { return e.Sleep(ctx, time.Hour) })
	time.Sleep(5 * time.Millisecond)
	if err := tk.Stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop = %v", err)
	}
	if e.Stats().InFlight != 0 {
		t.Fatal("timeout still in flight after Stop")
	}
}

func TestTaskStopFromInside(t *testing.T) {
	e := newTestExecutor(t)
	self := make(chan *Task, 1)
	tk, _ := e.Spawn(func(ctx context.Context) error {
		me := <-self
		if err := me.Stop(); err != ErrStopSelf {
			return err
		}
		<-ctx.Done() // Stop cancelled us
		return nil
	})
	self <- tk
	done := make(chan error, 1)
	go func() { done <- tk.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop from inside the task deadlocked")
	}
}

func TestCloseFromInsideTask(t *testing.T) {
	e, err := New(WithStrict())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := e.Spawn(func(ctx context.Context) error { return e.Sleep(ctx, time.Hour) })
	tk, _ := e.Spawn(func(context.Context) error { return e.Close() })
	if err := tk.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := other.Wait(); !errors.Is(err, ErrClosed) {
		t.Fatalf("other task: %v", err)
	}
}

func TestCloseIdempotentConcurrent(t *testing.T) {
	e, err := New(WithStrict())
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() { errs <- e.Close() }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := New(WithLoops(0)); err == nil {
		t.Fatal("New with 0 loops succeeded")
	}
	if _, err := New(WithStrict(), WithEntries(0)); err == nil {
		t.Fatal("New with 0 entries succeeded")
	}
}
