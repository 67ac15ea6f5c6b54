package localnats

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the server in a process group of its own (a ^C in the
// terminal does not reach it before Stop does) and has the kernel kill it
// when the process that started it dies, so that a killed test leaves no
// server behind.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
