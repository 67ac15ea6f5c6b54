package migrate

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
)

// Direction says which way a migration ran.
type Direction string

// Directions.
const (
	DirectionUp   Direction = "up"
	DirectionDown Direction = "down"
)

// Result is the outcome of running one migration.
type Result struct {
	// Version is the migration's number (7 for 00007_orders.sql).
	Version int64
	// File is the migration's file name, or "" for a Go migration without one.
	File string
	// Direction is up or down.
	Direction Direction
	// Duration is how long it ran.
	Duration time.Duration
	// Empty reports that the migration had nothing to run but was recorded.
	Empty bool
	// Err is the error it failed with, nil on success.
	Err error
}

// String renders the result as one line: "up   00007_orders.sql (12ms)".
func (r Result) String() string {
	state := ""
	switch {
	case r.Err != nil:
		state = " FAILED"
	case r.Empty:
		state = " (empty)"
	}
	return fmt.Sprintf("%-4s %s%s (%s)", r.Direction, r.label(), state, roundDuration(r.Duration))
}

func (r Result) label() string {
	if r.File != "" {
		return r.File
	}
	return fmt.Sprintf("version %d", r.Version)
}

// State is whether a migration has been applied.
type State string

// States.
const (
	StateApplied State = "applied"
	StatePending State = "pending"
)

// MigrationStatus describes one known migration.
type MigrationStatus struct {
	// Version is the migration's number.
	Version int64
	// File is the migration's file name, or "" for a Go migration without one.
	File string
	// Name is the file name without number and extension ("orders").
	Name string
	// State is applied or pending.
	State State
	// AppliedAt is when it was applied; zero when pending.
	AppliedAt time.Time
	// Checksum is the hex SHA-256 of the file now; "" for a Go migration
	// without a file.
	Checksum string
	// RecordedChecksum is the checksum recorded when it was applied; "" when
	// pending, or applied before checksums were kept (the next Up records it).
	RecordedChecksum string
	// Drift reports that the file changed since it was applied: Up refuses
	// to run until it is restored or accepted (WithAcceptDrift).
	Drift bool
}

func resultFrom(r *goose.MigrationResult) Result {
	if r == nil || r.Source == nil {
		return Result{}
	}
	return Result{
		Version:   r.Source.Version,
		File:      baseName(r.Source.Path),
		Direction: Direction(r.Direction),
		Duration:  r.Duration,
		Empty:     r.Empty,
		Err:       r.Error,
	}
}

func resultsFrom(rs []*goose.MigrationResult) []Result {
	out := make([]Result, 0, len(rs))
	for _, r := range rs {
		out = append(out, resultFrom(r))
	}
	return out
}

func baseName(p string) string {
	if p == "" {
		return ""
	}
	return path.Base(strings.ReplaceAll(p, "\\", "/"))
}

// nameOf returns "orders" for "00007_orders.sql".
func nameOf(file string) string {
	_, rest, ok := strings.Cut(file, "_")
	if !ok {
		return ""
	}
	return strings.TrimSuffix(rest, path.Ext(rest))
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
