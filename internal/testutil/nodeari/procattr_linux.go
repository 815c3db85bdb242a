//go:build linux

package nodeari

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill the child when the test binary dies
// (e.g. on a test timeout panic), so no stray process keeps its ports.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
