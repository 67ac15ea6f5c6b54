//go:build migratelint

package lint_test

import (
	"fmt"
	"testing/fstest"

	"github.com/cortexerp/datalayer/migrate/lint"
)

func ExampleCheck() {
	migrations := fstest.MapFS{
		"00001_orders.sql": {Data: []byte(`-- +goose Up
CREATE TABLE orders (id bigint PRIMARY KEY, placed_at timestamptz NOT NULL);
CREATE INDEX orders_placed_at_idx ON orders (placed_at); -- a new table: no lock to fear

-- +goose Down
DROP TABLE orders;
`)},
		"00002_orders_region.sql": {Data: []byte(`-- +goose Up
ALTER TABLE orders ADD COLUMN region text NOT NULL;

-- +goose Down
ALTER TABLE orders DROP COLUMN region;
`)},
	}
	rep, err := lint.Check(migrations)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range rep.Findings {
		fmt.Println(f)
	}
	// Output:
	// 00002_orders_region.sql:2: add-column-not-null: adding orders.region NOT NULL without a default fails as soon as orders has a row
	//	fix: add a constant DEFAULT (instant since PostgreSQL 11), or add the column nullable, backfill it, then SET NOT NULL behind a validated CHECK
}
