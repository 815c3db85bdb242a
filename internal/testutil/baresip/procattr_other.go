//go:build !linux

package baresip

import "os/exec"

func killWithParent(cmd *exec.Cmd) {}
