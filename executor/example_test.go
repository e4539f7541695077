//go:build linux

package executor_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kasync-go/kasync/executor"
)

func ExampleExecutor_Spawn() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	task, _ := e.Spawn(func(ctx context.Context) error {
		fmt.Println("hello from a task")
		return nil
	})
	fmt.Println("task returned:", task.Wait())
	// Output:
	// hello from a task
	// task returned: <nil>
}

func ExampleExecutor_Sleep() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	defer e.Close()
	start := time.Now()
	if err := e.Sleep(context.Background(), 10*time.Millisecond); err != nil {
		panic(err)
	}
	fmt.Println("slept at least 10ms:", time.Since(start) >= 10*time.Millisecond)
	// Output: slept at least 10ms: true
}

func ExampleExecutor_Close() {
	e, err := executor.New()
	if err != nil {
		panic(err)
	}
	task, _ := e.Spawn(func(ctx context.Context) error {
		return e.Sleep(ctx, time.Hour) // cut short by Close
	})
	e.Close() // cancels the task's sleep and waits for the task
	fmt.Println(task.Wait())
	_, err = e.Spawn(func(context.Context) error { return nil })
	fmt.Println(err)
	// Output:
	// executor: closed
	// executor: closed
}

func ExampleNoWaitLock() {
	var l executor.NoWaitLock
	l.TryLock()
	fmt.Println("second TryLock:", l.TryLock())
	fmt.Println("someone tried meanwhile:", l.Unlock())
	// Output:
	// second TryLock: false
	// someone tried meanwhile: true
}
