//go:build !linux

package localnats

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server in a process group of its own (a ^C in the
// terminal does not reach it before Stop does).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
