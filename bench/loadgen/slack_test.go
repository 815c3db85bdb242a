package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStartWithSlack: the started process has the timer slack asked for;
// loadgen's own threads keep theirs.
func TestStartWithSlack(t *testing.T) {
	slackOf := func(pid int) int64 {
		t.Helper()
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/timerslack_ns")
		if err != nil {
			t.Skipf("timerslack_ns not readable here: %v", err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	own := slackOf(os.Getpid())
	for _, slack := range []time.Duration{2 * time.Millisecond, 0} {
		cmd := exec.Command("sleep", "30")
		if err := startWithSlack(cmd, slack); err != nil {
			t.Fatal(err)
		}
		got := slackOf(cmd.Process.Pid)
		cmd.Process.Kill()
		cmd.Wait()
		want := slack.Nanoseconds()
		if slack == 0 {
			want = own
		}
		if got != want {
			t.Errorf("-timer-slack %v: the child's slack is %d ns, want %d", slack, got, want)
		}
	}
	if got := slackOf(os.Getpid()); got != own {
		t.Errorf("loadgen's own slack changed: %d ns, was %d", got, own)
	}
}
