package bench

// The bulk load writes into the example application's products table with
// dbgen's queries: make remove-example deletes this file with the example,
// and the bench then runs without its bulk-load section (see productLoad).

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	pgxdecimal "github.com/jackc/pgx-shopspring-decimal"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"

	"github.com/cortexerp/datalayer/dbgen"
	"github.com/cortexerp/datalayer/uow"
)

func init() { productLoad = (*run).loadProducts }

// productRows returns n distinct products; a quarter have no description.
func productRows(n int) []dbgen.ProductImportParams {
	rows := make([]dbgen.ProductImportParams, n)
	rates := []decimal.Decimal{decimal.New(2000, -4), decimal.New(1000, -4), decimal.New(550, -4)}
	for i := range rows {
		var desc *string
		if i%4 != 0 {
			d := "Bulk-loaded product number " + strconv.Itoa(i) + ", for the benchmark"
			desc = &d
		}
		rows[i] = dbgen.ProductImportParams{
			Sku:         fmt.Sprintf("BENCH-%07d", i),
			Name:        "Product " + strconv.Itoa(i),
			Description: desc,
			UnitPrice:   decimal.New(int64(100+i%100_000), -2),
			TaxRate:     rates[i%len(rates)],
		}
	}
	return rows
}

// writeCSV writes rows as psql \copy … (FORMAT csv) reads them: an empty
// unquoted field is NULL.
func writeCSV(path string, rows []dbgen.ProductImportParams) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	w := csv.NewWriter(f)
	for _, r := range rows {
		desc := ""
		if r.Description != nil {
			desc = *r.Description
		}
		if err := w.Write([]string{r.Sku, r.Name, desc, r.UnitPrice.String(), r.TaxRate.String()}); err != nil {
			_ = f.Close()
			return fmt.Errorf("write csv: %w", err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close()
		return fmt.Errorf("write csv: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

var rePsqlTime = regexp.MustCompile(`(?m)^Time: ([0-9.]+) ms`)

// loadProducts writes the same rows with every method, CopyReps times, in
// an order that rotates, emptying products before each.
func (r *run) loadProducts(ctx context.Context, rep *Report) error {
	name, err := r.createDatabase(ctx, "bench_erp")
	if err != nil {
		return err
	}
	url := r.srv.URLFor(name)
	if err := migrateUp(ctx, url); err != nil {
		return err
	}
	pool, err := newERPPool(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()

	rows := productRows(r.cfg.CopyRows)
	csvPath := filepath.Join(r.tmp, "products.csv")
	if err := writeCSV(csvPath, rows); err != nil {
		return err
	}
	u := uow.New(pool, dbgen.New)
	psqlCopy := `\copy products (sku, name, description, unit_price, tax_rate) FROM '` +
		strings.ReplaceAll(csvPath, "'", "''") + `' WITH (FORMAT csv)`
	conn := newClientConn(url)

	timed := map[loadMethod]func() (time.Duration, error){
		loadCopyFrom: func() (time.Duration, error) {
			t0 := time.Now()
			err := u.Do(ctx, func(ctx context.Context, q *dbgen.Queries) error {
				_, err := q.ProductImport(ctx, rows)
				return err
			})
			return time.Since(t0), err
		},
		loadPerRow: func() (time.Duration, error) {
			t0 := time.Now()
			err := u.Do(ctx, func(ctx context.Context, q *dbgen.Queries) error {
				for _, row := range rows {
					if _, err := q.ProductCreate(ctx, dbgen.ProductCreateParams(row)); err != nil {
						return err
					}
				}
				return nil
			})
			return time.Since(t0), err
		},
		loadPsqlCopy: func() (time.Duration, error) {
			out, err := conn.run(ctx, r.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", `\timing on`, "-c", psqlCopy)
			if err != nil {
				return 0, err
			}
			m := rePsqlTime.FindStringSubmatch(out)
			if m == nil {
				return 0, fmt.Errorf("parse psql timing: no \"Time:\" in %q", tail(out, 3))
			}
			ms, err := strconv.ParseFloat(m[1], 64)
			return time.Duration(ms * float64(time.Millisecond)), err
		},
	}

	results := map[loadMethod]*loadResult{}
	for _, method := range allLoadMethods() {
		results[method] = &loadResult{Method: method, Rows: len(rows)}
	}
	for i := range r.cfg.CopyReps {
		for _, method := range rotate(allLoadMethods(), i) {
			if _, err := pool.Exec(ctx, "TRUNCATE products RESTART IDENTITY CASCADE"); err != nil {
				return fmt.Errorf("empty products: %w", err)
			}
			d, err := timed[method]()
			if err != nil {
				return fmt.Errorf("%s: %w", method, err)
			}
			var n int
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n); err != nil {
				return fmt.Errorf("count products: %w", err)
			}
			if n != len(rows) {
				return fmt.Errorf("%s: wrote %d rows, want %d", method, n, len(rows))
			}
			results[method].Times = append(results[method].Times, d)
			progress(r.cfg, "load %d/%d  %-36s %8.0f rows/s", i+1, r.cfg.CopyReps, method, ratio(float64(n), d.Seconds()))
		}
	}
	for _, method := range allLoadMethods() {
		res := results[method]
		res.Median = median(res.Times)
		rep.load = append(rep.load, *res)
	}
	return nil
}

// newERPPool opens a pool on the ERP schema with shopspring decimals
// registered for numeric, as an application using dbgen would.
func newERPPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	pcfg.MaxConns = 2
	pcfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		pgxdecimal.Register(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return pool, nil
}
