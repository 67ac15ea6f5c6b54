package uow

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// handle is the DBTX of one level, or of the pool when l is nil. Every
// statement claims the transaction (one at a time) and sends whatever
// BEGIN, SAVEPOINT or RELEASE is pending in the same round trip.
type handle struct {
	l    *level
	pool *pgxpool.Pool
	c    *core // set when l is nil
}

func (h *handle) core() *core {
	if h.l != nil {
		return h.l.tx.core
	}
	return h.c
}

func (h *handle) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := h.core().checkParams(args); err != nil {
		return pgconn.CommandTag{}, err
	}
	if h.l == nil {
		return h.pool.Exec(ctx, sql, args...)
	}
	t := h.l.tx
	if h.l.writeBehind {
		if name, ok := execQueryName(sql); ok && plainArgs(args) {
			return pgconn.CommandTag{}, t.deferStmt(ctx, h.l, name, sql, args)
		}
	}
	conn, plan, err := t.claim(ctx, h.l, false, sql, args, nil)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	if len(plan) == 0 {
		tag, err := conn.Exec(ctx, sql, args...)
		t.leave(conn, sql, err, false)
		return tag, translate(err)
	}
	probe := t.probeXid(plan)
	br, err := t.sendPlan(ctx, conn, plan, func(b *pgx.Batch) {
		t.queue(b, sql, args...)
		if probe {
			t.queue(b, xidProbeSQL)
		}
	})
	if err != nil {
		t.leave(conn, "", err, false)
		return pgconn.CommandTag{}, translate(err)
	}
	tag, err := br.Exec()
	probed := probe && err == nil && t.readXid(br) == nil
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	t.leave(conn, sql, err, probed && err == nil)
	return tag, translate(err)
}

func (h *handle) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := h.core().checkParams(args); err != nil {
		return nil, err
	}
	if h.l == nil {
		return h.pool.Query(ctx, sql, args...)
	}
	r := &rows{}
	if err := h.query(ctx, r, sql, args); err != nil {
		return nil, err
	}
	return r, nil
}

// query runs sql in the transaction and fills r with its result, which
// holds the claim until it is closed.
func (h *handle) query(ctx context.Context, r *rows, sql string, args []any) error {
	t := h.l.tx
	conn, plan, err := t.claim(ctx, h.l, false, sql, args, nil)
	if err != nil {
		return err
	}
	r.t, r.conn, r.sql = t, conn, sql
	if len(plan) == 0 {
		r.Rows, err = conn.Query(ctx, sql, args...)
	} else {
		r.probe = t.probeXid(plan)
		r.br, err = t.sendPlan(ctx, conn, plan, func(b *pgx.Batch) {
			t.queue(b, sql, args...)
			if r.probe {
				t.queue(b, xidProbeSQL)
			}
		})
		if err == nil {
			r.Rows, err = r.br.Query()
		}
	}
	if err != nil {
		if r.br != nil {
			_ = r.br.Close()
		}
		t.leave(conn, "", err, false)
		return translate(err)
	}
	t.mu.Lock()
	t.open = r
	t.signalLocked()
	t.mu.Unlock()
	return nil
}

// QueryRow is Query for one row; one allocation holds the Row and its rows.
func (h *handle) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if h.l == nil {
		rs, err := h.Query(ctx, sql, args...)
		return &row{rows: rs, err: err}
	}
	r := &row{}
	if r.err = h.core().checkParams(args); r.err != nil {
		return r
	}
	if r.err = h.query(ctx, &r.own, sql, args); r.err == nil {
		r.rows = &r.own
	}
	return r
}

func (h *handle) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if h.l == nil {
		return h.pool.CopyFrom(ctx, table, columns, src)
	}
	t := h.l.tx
	// COPY cannot share a batch: the pending commands go first, on their own.
	conn, _, err := t.claim(ctx, h.l, true, "", nil, nil)
	if err != nil {
		return 0, err
	}
	n, err := conn.CopyFrom(ctx, table, columns, src)
	t.leave(conn, "", err, false)
	return n, translate(err)
}

func (h *handle) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	for _, q := range b.QueuedQueries {
		if err := h.core().checkParams(q.Arguments); err != nil {
			return pgx.FailedBatchResults(b, err)
		}
	}
	if h.l == nil {
		return h.pool.SendBatch(ctx, b)
	}
	t := h.l.tx
	conn, plan, err := t.claim(ctx, h.l, false, "", nil, b)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	r := &batchResults{t: t, conn: conn}
	if len(plan) == 0 {
		r.BatchResults = conn.SendBatch(ctx, b)
	} else {
		r.BatchResults, err = t.sendPlan(ctx, conn, plan, func(nb *pgx.Batch) {
			nb.QueuedQueries = append(nb.QueuedQueries, b.QueuedQueries...)
		})
		if err != nil {
			t.leave(conn, "", err, false)
			return pgx.FailedBatchResults(b, translate(err))
		}
	}
	t.mu.Lock()
	t.open = r
	t.signalLocked()
	t.mu.Unlock()
	return r
}

// rows holds the claim on the transaction until it is closed or exhausted.
type rows struct {
	pgx.Rows
	t     *txn
	conn  *pgx.Conn
	sql   string
	br    pgx.BatchResults // the batch the rows came from, if any
	probe bool
	once  sync.Once
	err   error
}

func (r *rows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *rows) Close() {
	r.once.Do(func() {
		r.Rows.Close()
		err := r.Rows.Err()
		probed := false
		if r.br != nil {
			probed = r.probe && err == nil && r.t.readXid(r.br) == nil
			if cerr := r.br.Close(); err == nil {
				err = cerr
			}
		}
		r.err = translate(err)
		r.t.leave(r.conn, r.sql, err, probed && err == nil)
	})
}

func (r *rows) closeOpen() { r.Close() }

func (r *rows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return translate(err)
	}
	return r.err
}

// row is the Row of QueryRow: errors surface at Scan, which closes the rows.
type row struct {
	rows pgx.Rows
	err  error
	own  rows // rows is &own in a unit of work
}

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// batchResults holds the claim on the transaction until the batch is closed.
type batchResults struct {
	pgx.BatchResults
	t    *txn
	conn *pgx.Conn
	once sync.Once
	err  error
}

func (r *batchResults) Close() error {
	r.once.Do(func() {
		r.err = translate(r.BatchResults.Close())
		r.t.leave(r.conn, "", r.err, false)
	})
	return r.err
}

func (r *batchResults) closeOpen() { _ = r.Close() }

func (r *batchResults) Tx() pgx.Tx { return nil }
