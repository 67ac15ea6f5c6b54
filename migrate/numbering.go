package migrate

import (
	"fmt"
	"strings"
	"time"
)

// Numbering is how a project numbers its migration files. By default
// ([NumberingAuto]) a project's scheme is the one most of its files follow;
// [WithNumbering] (cmd/migrate -numbering) pins it. [Validate] checks every
// file against it and [Create] numbers new files by it.
type Numbering string

// Numberings.
const (
	// NumberingAuto takes the scheme most of the project's files follow
	// (sequential on a tie and in an empty directory).
	NumberingAuto Numbering = ""
	// NumberingSequential numbers files 00001_name, 00002_name …: versions
	// 1, 2, 3 without gaps (the house style; what migrate fix produces).
	NumberingSequential Numbering = "sequential"
	// NumberingTimestamp numbers files by their UTC creation time,
	// 20261201190800_name (goose create's default): unique, in any order.
	NumberingTimestamp Numbering = "timestamp"
)

// ParseNumbering reads a numbering scheme: sequential, timestamp, or auto
// (or empty) for [NumberingAuto].
func ParseNumbering(s string) (Numbering, error) {
	switch n := Numbering(strings.ToLower(strings.TrimSpace(s))); n {
	case "auto", NumberingAuto:
		return NumberingAuto, nil
	case NumberingSequential, NumberingTimestamp:
		return n, nil
	default:
		return "", fmt.Errorf("numbering %q: want sequential, timestamp or auto", s)
	}
}

// WithNumbering pins the project's numbering scheme for [Validate] and
// [Create] (default [NumberingAuto]: the scheme of the first migration).
func WithNumbering(n Numbering) Option {
	return optionFunc(func(c *config) error {
		if _, err := ParseNumbering(string(n)); err != nil {
			return fmt.Errorf("WithNumbering: %w", err)
		}
		c.numbering = n
		return nil
	})
}

// majority is the scheme most of files follow; sequential on a tie.
func majority(files []string) Numbering {
	stamped := 0
	for _, f := range files {
		if timestamped(f) {
			stamped++
		}
	}
	if 2*stamped > len(files) {
		return NumberingTimestamp
	}
	return NumberingSequential
}

// timestamped reports whether a migration is numbered the way goose create
// does by default: a 14-digit UTC time, 20261201190800_name.sql.
func timestamped(file string) bool {
	num, _, ok := strings.Cut(file, "_")
	if !ok || len(num) != len(timestampFormat) {
		return false
	}
	_, err := time.Parse(timestampFormat, num)
	return err == nil
}

const timestampFormat = "20060102150405"

// numberedEntry is one migration as numbering sees it.
type numberedEntry struct {
	version int64
	file    string
}

// checkNumbering reports the files, sorted by version, that break the
// scheme n (NumberingAuto: the first file's).
func checkNumbering(n Numbering, entries []numberedEntry) []error {
	if len(entries) == 0 {
		return nil
	}
	why := "pinned by -numbering / WithNumbering"
	if n == NumberingAuto {
		files := make([]string, len(entries))
		for i, e := range entries {
			files[i] = e.file
		}
		n, why = majority(files), "as most of its files are"
	}
	var problems []error
	if n == NumberingTimestamp {
		for _, e := range entries {
			if !timestamped(e.file) {
				problems = append(problems, fmt.Errorf("%s: sequential version %d in a project numbered by timestamps (%s): "+
					"name it YYYYMMDDhhmmss_name, or number the project sequentially (migrate fix, -numbering sequential)", e.file, e.version, why))
			}
		}
		return problems
	}
	var sequential []numberedEntry
	for _, e := range entries {
		if timestamped(e.file) {
			problems = append(problems, fmt.Errorf("%s: timestamp version %d in a project numbered sequentially (%s): "+
				"renumber it with migrate fix, or choose timestamps (-numbering timestamp, WithNumbering)", e.file, e.version, why))
			continue
		}
		sequential = append(sequential, e)
	}
	for i, e := range sequential {
		if want := int64(i + 1); e.version != want {
			problems = append(problems, fmt.Errorf("%s: version %d out of sequence: want %05d (versions run 1, 2, 3 … without gaps)", e.file, e.version, want))
			break
		}
	}
	return problems
}
