//go:build !linux

package nodeari

import "os/exec"

func killWithParent(cmd *exec.Cmd) {}
