// Package secrettest helps fuzz targets prove that a password never leaks.
package secrettest

import (
	"fmt"
	"strings"
)

// Marker is put into every fuzzed password, at a fuzzed position, and taken
// out of everything else (see Strip): wherever it shows in an output, a piece
// of the password leaked.
const Marker = "Zq9"

// Strip removes every Marker from s, also those that appear once others are
// removed.
func Strip(s string) string {
	for strings.Contains(s, Marker) {
		s = strings.ReplaceAll(s, Marker, "")
	}
	return s
}

// Encode percent-encodes everything in s but URL-unreserved characters, as a
// careful user writes a password into a URL.
func Encode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
