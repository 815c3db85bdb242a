package main

import (
	"os/exec"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// timerSlack is -timer-slack.
var timerSlack time.Duration

// startWithSlack starts cmd with the given timer slack (-timer-slack),
// which the server then has in each of its threads: a child inherits the
// slack of the thread that forks it, and keeps it across execve
// (prctl(2), PR_SET_TIMERSLACK). systemd's TimerSlackNSec= does the same
// (packaging/tapedeck.service). The fork runs on a locked thread whose
// slack is set for it and restored after, so loadgen's own timers (its RTP
// pacer) keep the default slack. 0: the default.
func startWithSlack(cmd *exec.Cmd, slack time.Duration) error {
	if slack <= 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
		if err == nil {
			err = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(slack.Nanoseconds()), 0, 0, 0)
		}
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = cmd.Start()
		if unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(old), 0, 0, 0) == nil {
			runtime.UnlockOSThread()
		} // else: the thread exits with this goroutine, still locked
		errc <- err
	}()
	return <-errc
}
