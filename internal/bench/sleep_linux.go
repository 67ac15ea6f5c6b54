package bench

import (
	"errors"
	"syscall"
	"time"
)

// preciseSleep sleeps for d in a nanosleep system call, which the kernel
// ends within its timer slack (50 µs by default), where the runtime's
// timers may wait for the poller's next whole millisecond.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for errors.Is(syscall.Nanosleep(&ts, &ts), syscall.EINTR) { // interrupted: ts holds what is left
	}
}
