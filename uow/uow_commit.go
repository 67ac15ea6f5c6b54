package uow

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// commit sends COMMIT and, when the connection is lost while it is in
// flight, learns the outcome from the server instead of guessing.
func (t *txn) commit(ctx context.Context, conn *pgxpool.Conn) error {
	c := conn.Conn()
	t.mu.Lock()
	var plan []cmd // deferred statements (and the BEGIN they may need) ride with COMMIT
	if t.deferred > 0 || t.beginQueued {
		plan, t.pending = t.pending, nil
		t.unprobed = true
	}
	probe := t.xid == 0 && t.unprobed && !t.opts.readOnly && t.pool == t.core.pool
	t.mu.Unlock()

	var tag pgconn.CommandTag
	var err, xidErr error
	if probe || len(plan) > 0 {
		// The transaction id rides with COMMIT: no extra round trip.
		b := t.newBatch(len(plan) + 2)
		for _, pc := range plan {
			t.queueCmd(b, pc)
		}
		if probe {
			t.queue(b, xidProbeSQL)
		}
		t.queue(b, "COMMIT")
		br := c.SendBatch(ctx, b)
		if perr := t.readPlan(br, plan); perr != nil {
			_ = br.Close()
			return t.deferredFailed(ctx, conn, perr)
		}
		if probe {
			xidErr = t.readXid(br)
		}
		tag, err = br.Exec()
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	} else {
		tag, err = c.Exec(ctx, "COMMIT")
	}
	// The tag is the outcome: the server can answer COMMIT and then end the
	// session (FATAL 57P01 after pg_terminate_backend or a fast shutdown)
	// before ReadyForQuery, and pgx then reports that FATAL with the tag.
	switch tag.String() {
	case "COMMIT":
		if err != nil {
			t.core.cfg.logger.LogAttrs(ctx, slogWarn, "uow: the server committed, then ended the session", attrErr(err))
		}
		return nil
	case "ROLLBACK":
		return fmt.Errorf("%w: the server rolled the transaction back at COMMIT", ErrRollbackOnly)
	}
	if err == nil {
		return errors.New("uow: commit: the server sent no COMMIT tag")
	}
	if _, ok := errors.AsType[pgx.ErrPreprocessingBatch](err); ok {
		// pgx could not prepare the probe or COMMIT, and so sent no part of
		// the batch to run: the transaction is rolled back (by ROLLBACK, or
		// by the server when the session ended).
		t.rollback(ctx, conn)
		return fmt.Errorf("%w: %w", ErrCommitAborted, err)
	}
	if isFatal(xidErr) {
		// The server ended the session in place of the probe's answer: it
		// never reached the COMMIT queued behind the probe.
		return fmt.Errorf("%w: %w", ErrCommitAborted, err)
	}
	if !c.IsClosed() {
		_, isPg := errors.AsType[*pgconn.PgError](err)
		if isPg && !isFatal(err) || !isPg && pgconn.SafeToRetry(err) {
			// Refused by the server (deferred constraint, 40001), or never
			// sent (ctx already done): the transaction did not commit.
			t.rollback(ctx, conn)
			return fmt.Errorf("uow: commit: %w", translate(err))
		}
		// The session is unusable; closing it makes the server roll back a
		// COMMIT it never received.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		_ = c.Close(cctx)
		cancel()
	}
	// No tag and no session: the COMMIT may or may not have run. (pgconn's
	// SafeToRetry is no proof that it was not sent once the connection is
	// closed: a read that fails while COMMIT is written ends as "conn closed",
	// which claims to be safe.)
	return t.commitOutcome(ctx, err)
}

// deferredFailed ends a unit of work whose deferred statements failed in the
// batch that carried its COMMIT, so the COMMIT did not run, or may have.
func (t *txn) deferredFailed(ctx context.Context, conn *pgxpool.Conn, err error) error {
	c := conn.Conn()
	_, isPg := errors.AsType[*pgconn.PgError](err)
	_, unsent := errors.AsType[pgx.ErrPreprocessingBatch](err)
	switch {
	case isFatal(err):
		// The session ended before COMMIT: the server rolled back.
		return fmt.Errorf("%w: %w", ErrCommitAborted, err)
	case unsent:
		// pgx could not prepare the batch: none of it ran.
		t.rollback(ctx, conn)
		return fmt.Errorf("%w: %w", ErrCommitAborted, err)
	case isPg:
		// The server refused a statement and so skipped COMMIT.
		t.rollback(ctx, conn)
		return err
	}
	// The round trip broke: the COMMIT behind may have run.
	if !c.IsClosed() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		_ = c.Close(cctx)
		cancel()
	}
	return t.commitOutcome(ctx, err)
}

// commitOutcome asks a fresh connection what became of the transaction whose
// COMMIT was cut off by a lost connection.
func (t *txn) commitOutcome(ctx context.Context, commitErr error) error {
	t.mu.Lock()
	xid, unprobed := t.xid, t.unprobed
	t.mu.Unlock()
	log := t.core.cfg.logger
	if xid == 0 {
		if !unprobed || t.opts.readOnly {
			// No transaction id after the last statement: nothing was written.
			return nil
		}
		return fmt.Errorf("%w: %w", ErrCommitUnknown, commitErr)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var lastErr error
	for {
		var status *string
		lastErr = t.core.pool.QueryRow(cctx, "SELECT pg_xact_status($1::text::xid8)", strconv.FormatUint(xid, 10)).Scan(&status)
		if lastErr == nil && status != nil {
			switch *status {
			case "committed":
				log.LogAttrs(ctx, slogWarn, "uow: connection lost during COMMIT; the server committed", attrXid(xid))
				return nil
			case "aborted":
				log.LogAttrs(ctx, slogWarn, "uow: connection lost during COMMIT; the server rolled back", attrXid(xid))
				return fmt.Errorf("%w: %w", ErrCommitAborted, commitErr)
			}
			// "in progress": the server has not finished with the old session yet.
		}
		select {
		case <-cctx.Done():
			if lastErr == nil {
				lastErr = errors.New("transaction still in progress")
			}
			log.LogAttrs(ctx, slogError, "uow: commit outcome unknown", attrXid(xid), attrErr(lastErr))
			return fmt.Errorf("%w (xid %d): %w", ErrCommitUnknown, xid, errors.Join(commitErr, lastErr))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
