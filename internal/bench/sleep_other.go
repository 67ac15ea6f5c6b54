//go:build !linux

package bench

import "time"

// preciseSleep is time.Sleep where there is no nanosleep in package syscall.
func preciseSleep(d time.Duration) { time.Sleep(d) }
