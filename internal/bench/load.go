package bench

import (
	"context"
	"time"
)

// loadMethod names a way of writing the bulk-load rows into products.
type loadMethod string

// The bulk-load methods; psql \copy is the baseline.
const (
	// loadCopyFrom is dbgen's :copyfrom ProductImport (pgx CopyFrom, binary
	// COPY) inside uow.Do.
	loadCopyFrom loadMethod = "dbgen :copyfrom (ProductImport)"
	// loadPerRow is one dbgen ProductCreate (INSERT … RETURNING *) per row,
	// all inside one uow.Do.
	loadPerRow loadMethod = "per-row ProductCreate in one uow.Do"
	// loadPsqlCopy is psql's \copy of a CSV file with the same rows (text
	// COPY), timed by psql's \timing: its start-up and connection are left out.
	loadPsqlCopy loadMethod = `psql \copy from CSV`
)

// allLoadMethods returns every bulk-load method in report order.
func allLoadMethods() []loadMethod { return []loadMethod{loadPsqlCopy, loadCopyFrom, loadPerRow} }

// loadResult is one bulk-load method's timings.
type loadResult struct {
	Method loadMethod
	// Rows is the number of rows written by each repetition.
	Rows int
	// Times are the repetitions' durations, in the order they ran.
	Times []time.Duration
	// Median is the median of Times.
	Median time.Duration
}

// rowsPerSecond is Rows over Median.
func (l loadResult) rowsPerSecond() float64 { return ratio(float64(l.Rows), l.Median.Seconds()) }

// productLoad is the bulk load into the example's products table
// (load_products.go sets it at init). It is nil once make remove-example has
// taken the example and that file out: the bench then leaves the bulk-load
// section out of its report and says so.
var productLoad func(r *run, ctx context.Context, rep *Report) error

// loadMeasured reports whether this build of the bench measures the bulk
// load (false once make remove-example has taken the example out).
func loadMeasured() bool { return productLoad != nil }

// load runs the bulk load, if this build has one.
func (r *run) load(ctx context.Context, rep *Report) error {
	if productLoad == nil {
		progress(r.cfg, "bulk load skipped: it needs the example's products table, which make remove-example took out")
		return nil
	}
	return productLoad(r, ctx, rep)
}
