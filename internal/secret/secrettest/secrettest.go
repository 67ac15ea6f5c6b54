// Package secrettest helps fuzz targets prove that a password never leaks.
package secrettest

import "strings"

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
