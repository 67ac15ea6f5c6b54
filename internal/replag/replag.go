// Package replag measures how far a streaming replica is behind its primary,
// from WAL positions: uow routes reads by it, provider reports it, localpg
// waits on it. One mechanism, shared.
//
// A replica's lag in bytes is the primary's WAL insert position minus the
// replica's replay position. Its lag in time is how long ago the primary
// stood where the replica's replay position stands now: a [History] keeps
// the primary's positions with the times they were read and interpolates
// between the two around the replay position. An idle primary thus never
// makes a replica look behind (the replay timestamp,
// pg_last_xact_replay_timestamp, grows on an idle primary), and no two
// machines' clocks are compared.
package replag

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// InsertLSNSQL reads the server's WAL insert position as a replay position,
// as text ("16/B374D848"). Read after COMMIT on the session that committed,
// it is at or past the end of the commit record (inserted before COMMIT
// returned, flushed or not), so a replica whose replay position reached it
// shows the transaction; read inside the transaction it would lie before the
// commit record, which is not enough. The insert position of a server whose
// last record ended at a page boundary lies past that page's header, which
// no replay position (the end of a record) ever equals: it is moved back to
// the boundary (24 bytes for a page header, 40 for the first page of a
// segment), or a wait for it would last until the next record on an idle
// primary.
const InsertLSNSQL = `SELECT (CASE
	WHEN (l - '0/0'::pg_lsn) % pg_size_bytes(current_setting('wal_segment_size')) = 40 THEN l - 40
	WHEN (l - '0/0'::pg_lsn) % current_setting('wal_block_size')::int = 24 THEN l - 24
	ELSE l END)::text FROM pg_current_wal_insert_lsn() AS l`

// ReplaySQL reads whether the server is a standby and its replay position
// as text ('0/0' on a server that never was one).
const ReplaySQL = "SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn(), '0/0')::text"

// ReplayedSQL reports whether the server has replayed the position $1 (text).
const ReplayedSQL = "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)"

// ParseLSN reads a pg_lsn's text form, "16/B374D848".
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if ok {
		h, err1 := strconv.ParseUint(hi, 16, 32)
		l, err2 := strconv.ParseUint(lo, 16, 32)
		if err1 == nil && err2 == nil {
			return h<<32 | l, nil
		}
	}
	return 0, fmt.Errorf("%q is not a WAL position (like 16/B374D848)", s)
}

// FormatLSN writes lsn as PostgreSQL does, "16/B374D848".
func FormatLSN(lsn uint64) string {
	return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn))
}

// History is the primary's WAL insert positions over a window of time. It is
// not safe for concurrent use.
type History struct {
	window  time.Duration
	samples []sample // oldest first
}

type sample struct {
	at  time.Time
	lsn uint64
}

// NewHistory keeps positions for window (plus one older position), enough to
// measure lags up to window.
func NewHistory(window time.Duration) *History { return &History{window: window} }

// Add records that the primary stood at lsn at time at, forgetting positions
// older than the window but the newest of them.
func (h *History) Add(at time.Time, lsn uint64) {
	drop := 0
	for drop < len(h.samples) && at.Sub(h.samples[drop].at) > h.window {
		drop++
	}
	drop = max(drop-1, 0)
	h.samples = append(h.samples[drop:], sample{at: at, lsn: lsn})
}

// Latest returns the newest position recorded.
func (h *History) Latest() (lsn uint64, ok bool) {
	if len(h.samples) == 0 {
		return 0, false
	}
	return h.samples[len(h.samples)-1].lsn, true
}

// Lag returns how long before now the primary stood at replayed: 0 when
// replayed is at or past the newest position (or nothing is recorded); the
// time since the position was reached, interpolated between the two
// positions around it; the age of the oldest position when replayed lies
// before all of them (a lower bound).
func (h *History) Lag(replayed uint64, now time.Time) time.Duration {
	s := h.samples
	if len(s) == 0 || replayed >= s[len(s)-1].lsn {
		return 0
	}
	for j := len(s) - 2; j >= 0; j-- {
		if s[j].lsn > replayed {
			continue
		}
		a, b := s[j], s[j+1]
		frac := float64(replayed-a.lsn) / float64(b.lsn-a.lsn)
		at := a.at.Add(time.Duration(frac * float64(b.at.Sub(a.at))))
		return max(now.Sub(at), 0)
	}
	return now.Sub(s[0].at)
}
