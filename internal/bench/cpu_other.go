//go:build !unix

package bench

import "time"

// selfCPU is unknown on this OS.
func selfCPU() (time.Duration, bool) { return 0, false }
