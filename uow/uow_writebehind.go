package uow

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Bounds of the write-behind queue: past either, the queue is sent at once.
const (
	maxDeferred      = 64
	maxDeferredBytes = 1 << 20
)

// execQueryName returns X when sql starts with sqlc's "-- name: X :exec"
// line: a statement whose result nobody reads.
func execQueryName(sql string) (string, bool) {
	rest, ok := strings.CutPrefix(sql, "-- name: ")
	if !ok {
		return "", false
	}
	line, _, _ := strings.Cut(rest, "\n")
	name, kind, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok || strings.TrimSpace(kind) != ":exec" || name == "" {
		return "", false
	}
	return name, true
}

// deferStmt queues a :exec statement of level l, with whatever BEGIN or
// SAVEPOINT it needs, to be sent with the next round trip.
func (t *txn) deferStmt(ctx context.Context, l *level, name, sql string, args []any) error {
	_, plan, err := t.enter(ctx, l)
	if err != nil {
		return err
	}
	t.mu.Lock()
	// enter moved the pending commands into its plan; queue them again,
	// with the commands it planned, ahead of the statement.
	for i := range plan {
		switch c := &plan[i]; c.kind {
		case cmdBegin:
			t.beginQueued = true
		case cmdSavepoint:
			c.level.needsSavepoint = false
			c.level.savepointQueued = true
		}
	}
	c := cmd{kind: cmdStmt, name: name, sql: sql, args: snapshot(args), level: l}
	t.pending = append(append(t.pending[:0], plan...), c) // enter emptied pending
	t.deferred++
	t.deferredBytes += len(sql) + argsSize(args)
	full := t.deferred >= maxDeferred || t.deferredBytes >= maxDeferredBytes
	t.busy = false
	t.signalLocked()
	t.mu.Unlock()
	if full {
		return t.flush(ctx, l)
	}
	return nil
}

// flush sends the pending commands (deferred statements among them) in one
// round trip, returning the error of the first that failed.
func (t *txn) flush(ctx context.Context, l *level) error {
	conn, plan, err := t.claim(ctx, l, false, "", nil, nil)
	if err != nil {
		return err
	}
	if len(plan) == 0 {
		t.leave(conn, "", nil, false)
		return nil
	}
	br, err := t.sendPlan(ctx, conn, plan, func(*pgx.Batch) {})
	if err == nil {
		err = br.Close()
	}
	t.leave(conn, "", err, false)
	return translate(err)
}

// hasDeferredLocked reports whether a statement of l waits in the queue.
func (t *txn) hasDeferredLocked(l *level) bool {
	for _, c := range t.pending {
		if c.kind == cmdStmt && c.level == l {
			return true
		}
	}
	return false
}

// plainArgs reports whether args hold no pgx query options (exec mode,
// result formats, a rewriter such as NamedArgs), which a batch cannot carry.
func plainArgs(args []any) bool {
	for _, a := range args {
		switch a.(type) {
		case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID, pgx.QueryRewriter:
			return false
		}
	}
	return true
}

// snapshot copies the byte slices among args, which callers commonly reuse.
// (The variadic slice itself is the call's own: sqlc's code builds it anew.)
func snapshot(args []any) []any {
	out := args
	for i, a := range args {
		var c any
		switch v := a.(type) {
		case []byte:
			c = slices.Clone(v)
		case json.RawMessage:
			c = json.RawMessage(slices.Clone(v))
		default:
			continue
		}
		if &out[0] == &args[0] {
			out = slices.Clone(args)
		}
		out[i] = c
	}
	return out
}

// argsSize estimates the bytes args take on the wire.
func argsSize(args []any) int {
	n := 0
	for _, a := range args {
		switch v := a.(type) {
		case string:
			n += len(v)
		case []byte:
			n += len(v)
		case json.RawMessage:
			n += len(v)
		default:
			n += 8
		}
	}
	return n
}
