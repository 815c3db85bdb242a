// Package schedtrace counts, with the runtime's execution tracer, the
// system calls that go through the Go scheduler's syscall state (package
// syscall's Syscall, as net's sockets make them; not RawSyscall), for
// tests that a hot path keeps its system calls raw (package rawsock, the
// RTP Poller). Imported only from _test.go files.
package schedtrace

import (
	"bytes"
	"errors"
	"io"
	"runtime/trace"
	"strings"
	"testing"

	xtrace "golang.org/x/exp/trace"
)

// Syscalls runs fn with the execution tracer on and returns the stacks of
// the system calls made through the syscall state, by any goroutine while
// it ran, whose stack has a function whose name contains one of funcs
// (every one if funcs is empty), one line of function names each.
func Syscalls(t testing.TB, fn func(), funcs ...string) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatalf("execution tracer: %v (is the test run with -trace?)", err)
	}
	func() {
		defer trace.Stop()
		fn()
	}()
	r, err := xtrace.NewReader(&buf)
	if err != nil {
		t.Fatalf("reading the trace: %v", err)
	}
	var found []string
	for {
		ev, err := r.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading the trace: %v", err)
		}
		if ev.Kind() != xtrace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != xtrace.ResourceGoroutine {
			continue
		}
		if from, to := st.Goroutine(); from != xtrace.GoRunning || to != xtrace.GoSyscall {
			continue
		}
		var names []string
		hit := len(funcs) == 0
		for f := range ev.Stack().Frames() {
			names = append(names, f.Func)
			for _, want := range funcs {
				if strings.Contains(f.Func, want) {
					hit = true
				}
			}
		}
		if hit {
			found = append(found, strings.Join(names, " < "))
		}
	}
	return found
}
