//go:build migratelint

package lint_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/migrate/lint"
)

// base is migration 1 of every case: the tables the later migrations find
// already there.
const base = `-- +goose Up
CREATE TABLE orders (id bigint PRIMARY KEY, total numeric, region text, customer_id bigint);
CREATE TABLE customers (id bigint PRIMARY KEY);

-- +goose Down
DROP TABLE customers;
DROP TABLE orders;
`

// check lints base and the given migrations (00002_b.sql, 00003_c.sql …)
// and returns the findings as "file:line: rule".
func check(t *testing.T, migrations ...string) []string {
	t.Helper()
	fsys := fstest.MapFS{"00001_base.sql": {Data: []byte(base)}}
	for i, m := range migrations {
		fsys[fmt.Sprintf("%05d_%c.sql", i+2, 'b'+i)] = &fstest.MapFile{Data: []byte(m)}
	}
	rep, err := lint.Check(fsys)
	require.NoError(t, err)
	got := []string{}
	for _, f := range rep.Findings {
		got = append(got, fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.Rule))
	}
	return got
}

func TestRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		migrations []string
		want       []string
	}{
		// syntax
		{"a statement PostgreSQL cannot parse is a syntax finding at its line", []string{
			"-- +goose Up\nCREATE TABLE t (\n    id bigint PRIMARY KEY,\n    name text,\n);\n"},
			[]string{"00002_b.sql:5: syntax"}},
		{"a typo in a keyword is a syntax finding", []string{
			"-- +goose Up\nSELECT 1;\nCREAT TABLE t (id int);\n"},
			[]string{"00002_b.sql:3: syntax"}},
		{"a file goose cannot split is a syntax finding", []string{
			"-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n"},
			[]string{"00002_b.sql:1: syntax"}},
		{"a syntax error in Down is found too", []string{
			"-- +goose Up\nSELECT 1;\n-- +goose Down\nSELEC 1;\n"},
			[]string{"00002_b.sql:4: syntax"}},

		// statement-begin
		{"a $$ body without StatementBegin is one finding, and the statements after it are still checked", []string{
			"-- +goose Up\nCREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n    RETURN 1;\nEND;\n$$;\nCREATE INDEX orders_total_idx ON orders (total);\n"},
			[]string{"00002_b.sql:2: statement-begin", "00002_b.sql:7: create-index-concurrently"}},
		{"a $tag$ body without StatementBegin is found as well", []string{
			"-- +goose Up\nDO $body$\nBEGIN\n    PERFORM 1;\nEND\n$body$;\n"},
			[]string{"00002_b.sql:2: statement-begin"}},
		{"a $$ body inside StatementBegin/End is fine", []string{
			"-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n    RETURN 1;\nEND;\n$$;\n-- +goose StatementEnd\n"},
			[]string{}},
		{"a $$ body on one line needs no StatementBegin", []string{
			"-- +goose Up\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n"},
			[]string{}},

		// create-index-concurrently
		{"CREATE INDEX on an existing table", []string{
			"-- +goose Up\nCREATE INDEX orders_total_idx ON orders (total);\n"},
			[]string{"00002_b.sql:2: create-index-concurrently"}},
		{"CREATE UNIQUE INDEX on an existing schema-qualified table", []string{
			"-- +goose Up\nCREATE UNIQUE INDEX orders_total_idx ON public.orders (total);\n"},
			[]string{"00002_b.sql:2: create-index-concurrently"}},
		{"CREATE INDEX on a table the same migration created is fine", []string{
			"-- +goose Up\nCREATE TABLE lines (id bigint, order_id bigint);\nCREATE INDEX lines_order_id_idx ON lines (order_id);\n"},
			[]string{}},
		{"CREATE INDEX CONCURRENTLY IF NOT EXISTS in a NO TRANSACTION migration is fine", []string{
			"-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_total_idx ON orders (total);\n-- +goose Down\nDROP INDEX CONCURRENTLY IF EXISTS orders_total_idx;\n"},
			[]string{}},

		{"ADD CONSTRAINT UNIQUE USING INDEX is fine", []string{
			"-- +goose Up\nALTER TABLE orders ADD CONSTRAINT orders_total_key UNIQUE USING INDEX orders_total_idx;\n"},
			[]string{}},
		{"a statement quoted in a comment above it is not the statement", []string{
			"-- +goose Up\n-- was: CREATE INDEX orders_total_idx ON orders (total);\nCREATE INDEX orders_total_idx ON orders (total);\n"},
			[]string{"00002_b.sql:3: create-index-concurrently"}},

		// concurrently-in-transaction
		{"CREATE INDEX CONCURRENTLY in a transactional migration", []string{
			"-- +goose Up\nCREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);\n"},
			[]string{"00002_b.sql:2: concurrently-in-transaction"}},
		{"DROP INDEX CONCURRENTLY in a transactional Down", []string{
			"-- +goose Up\nSELECT 1;\n-- +goose Down\nDROP INDEX CONCURRENTLY orders_total_idx;\n"},
			[]string{"00002_b.sql:4: concurrently-in-transaction"}},
		{"REINDEX CONCURRENTLY in a transactional migration", []string{
			"-- +goose Up\nREINDEX (CONCURRENTLY) TABLE orders;\n"},
			[]string{"00002_b.sql:2: concurrently-in-transaction"}},
		{"CONCURRENTLY sent with another statement in one goose statement runs in an implicit transaction", []string{
			"-- +goose NO TRANSACTION\n-- +goose Up\n-- +goose StatementBegin\nSET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_total_idx ON orders (total);\n-- +goose StatementEnd\n"},
			[]string{"00002_b.sql:5: concurrently-in-transaction"}},

		// add-column-not-null
		{"ADD COLUMN NOT NULL without a default", []string{
			"-- +goose Up\nALTER TABLE orders ADD COLUMN note text NOT NULL;\n"},
			[]string{"00002_b.sql:2: add-column-not-null"}},
		{"ADD COLUMN PRIMARY KEY without a default", []string{
			"-- +goose Up\nALTER TABLE customers ADD COLUMN code text PRIMARY KEY;\n"},
			[]string{"00002_b.sql:2: add-column-not-null"}},
		{"ADD COLUMN NOT NULL with a default is fine", []string{
			"-- +goose Up\nALTER TABLE orders ADD COLUMN note text NOT NULL DEFAULT '';\n"},
			[]string{}},
		{"ADD COLUMN NOT NULL as an identity has its values (it rewrites the table: add-column-rewrite)", []string{
			"-- +goose Up\nALTER TABLE customers ADD COLUMN n bigint NOT NULL GENERATED ALWAYS AS IDENTITY;\n"},
			[]string{"00002_b.sql:2: add-column-rewrite"}},
		{"a nullable ADD COLUMN is fine", []string{
			"-- +goose Up\nALTER TABLE orders ADD COLUMN note text;\n"},
			[]string{}},

		// add-column-rewrite
		{"ADD COLUMN with a volatile default", []string{
			"-- +goose Up\nALTER TABLE orders ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();\n"},
			[]string{"00002_b.sql:2: add-column-rewrite"}},
		{"ADD COLUMN with a volatile call inside its default", []string{
			"-- +goose Up\nALTER TABLE orders ADD COLUMN code text DEFAULT 'o-' || (random() * 1000)::int::text;\n"},
			[]string{"00002_b.sql:2: add-column-rewrite"}},
		{"ADD COLUMN bigserial", []string{
			"-- +goose Up\nALTER TABLE orders ADD COLUMN seq bigserial;\n"},
			[]string{"00002_b.sql:2: add-column-rewrite"}},
		{"ADD COLUMN stored generated", []string{
			"-- +goose Up\nALTER TABLE orders ADD COLUMN total2 numeric GENERATED ALWAYS AS (total * 2) STORED;\n"},
			[]string{"00002_b.sql:2: add-column-rewrite"}},
		{"ADD COLUMN with a stable default (now()) is fine", []string{
			"-- +goose Up\nALTER TABLE orders ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now();\n"},
			[]string{}},
		{"a volatile default on a table the migration created is fine", []string{
			"-- +goose Up\nCREATE TABLE t (n int);\nALTER TABLE t ADD COLUMN token uuid DEFAULT gen_random_uuid();\n"},
			[]string{}},

		// alter-column-type
		{"ALTER COLUMN TYPE on an existing table", []string{
			"-- +goose Up\nALTER TABLE orders\n    ALTER COLUMN total TYPE numeric(16, 2);\n"},
			[]string{"00002_b.sql:2: alter-column-type"}},
		{"ALTER COLUMN TYPE on a table the migration created is fine", []string{
			"-- +goose Up\nCREATE TABLE t (n int);\nALTER TABLE t ALTER COLUMN n TYPE bigint;\n"},
			[]string{}},

		// set-not-null
		{"SET NOT NULL without a validated CHECK", []string{
			"-- +goose Up\nALTER TABLE orders ALTER COLUMN region SET NOT NULL;\n"},
			[]string{"00002_b.sql:2: set-not-null"}},
		{"SET NOT NULL after a CHECK validated in an earlier migration is fine", []string{
			"-- +goose Up\nALTER TABLE orders ADD CONSTRAINT orders_region_nn CHECK (region IS NOT NULL) NOT VALID;\n",
			"-- +goose Up\nALTER TABLE orders VALIDATE CONSTRAINT orders_region_nn;\n",
			"-- +goose Up\nALTER TABLE orders ALTER COLUMN region SET NOT NULL;\nALTER TABLE orders DROP CONSTRAINT orders_region_nn;\n"},
			[]string{}},
		{"SET NOT NULL after a CHECK validated in the same transaction", []string{
			"-- +goose Up\nALTER TABLE orders ADD CONSTRAINT orders_region_nn CHECK (region IS NOT NULL) NOT VALID;\n",
			"-- +goose Up\nALTER TABLE orders VALIDATE CONSTRAINT orders_region_nn;\nALTER TABLE orders ALTER COLUMN region SET NOT NULL;\n"},
			[]string{"00003_c.sql:3: set-not-null"}},
		{"SET NOT NULL after a CHECK on another column", []string{
			"-- +goose Up\nALTER TABLE orders ADD CONSTRAINT orders_total_nn CHECK (total IS NOT NULL) NOT VALID;\n",
			"-- +goose Up\nALTER TABLE orders VALIDATE CONSTRAINT orders_total_nn;\n",
			"-- +goose Up\nALTER TABLE orders ALTER COLUMN region SET NOT NULL;\n"},
			[]string{"00004_d.sql:2: set-not-null"}},
		{"SET NOT NULL after the CHECK was dropped", []string{
			"-- +goose Up\nALTER TABLE orders ADD CONSTRAINT orders_region_nn CHECK (region IS NOT NULL) NOT VALID;\n",
			"-- +goose Up\nALTER TABLE orders VALIDATE CONSTRAINT orders_region_nn;\n",
			"-- +goose Up\nALTER TABLE orders DROP CONSTRAINT orders_region_nn;\nALTER TABLE orders ALTER COLUMN region SET NOT NULL;\n"},
			[]string{"00004_d.sql:3: set-not-null"}},

		// constraint-not-valid
		{"ADD FOREIGN KEY without NOT VALID", []string{
			"-- +goose Up\nALTER TABLE orders ADD CONSTRAINT orders_customer_fk\n    FOREIGN KEY (customer_id) REFERENCES customers (id);\n"},
			[]string{"00002_b.sql:2: constraint-not-valid"}},
		{"ADD CHECK without NOT VALID", []string{
			"-- +goose Up\nALTER TABLE orders ADD CHECK (total >= 0);\n"},
			[]string{"00002_b.sql:2: constraint-not-valid"}},
		{"ADD COLUMN with REFERENCES", []string{
			"-- +goose Up\nALTER TABLE orders ADD COLUMN buyer_id bigint REFERENCES customers (id);\n"},
			[]string{"00002_b.sql:2: constraint-not-valid"}},
		{"ADD FOREIGN KEY NOT VALID, validated in a later migration, is fine", []string{
			"-- +goose Up\nALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\n",
			"-- +goose Up\nALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;\n"},
			[]string{}},
		{"VALIDATE in the transaction that added the constraint NOT VALID", []string{
			"-- +goose Up\nALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;\n"},
			[]string{"00002_b.sql:3: constraint-not-valid"}},
		{"a FOREIGN KEY on a table the migration created is fine", []string{
			"-- +goose Up\nCREATE TABLE lines (order_id bigint);\nALTER TABLE lines ADD CONSTRAINT lines_order_fk FOREIGN KEY (order_id) REFERENCES orders (id);\n"},
			[]string{}},
		{"ADD CONSTRAINT UNIQUE on an existing table builds an index under lock", []string{
			"-- +goose Up\nALTER TABLE orders ADD CONSTRAINT orders_total_key UNIQUE (total);\n"},
			[]string{"00002_b.sql:2: create-index-concurrently"}},

		// renames
		{"RENAME of an existing table", []string{
			"-- +goose Up\nALTER TABLE orders RENAME TO purchase_orders;\n"},
			[]string{"00002_b.sql:2: rename-table"}},
		{"RENAME COLUMN of an existing table", []string{
			"-- +goose Up\nALTER TABLE orders RENAME COLUMN total TO grand_total;\n"},
			[]string{"00002_b.sql:2: rename-column"}},
		{"renames inside the migration that created the table are fine", []string{
			"-- +goose Up\nCREATE TABLE t (n int);\nALTER TABLE t RENAME COLUMN n TO m;\nALTER TABLE t RENAME TO u;\nCREATE INDEX u_m_idx ON u (m);\n"},
			[]string{}},

		// drops
		{"DROP TABLE of an existing table", []string{
			"-- +goose Up\nDROP TABLE customers;\n"},
			[]string{"00002_b.sql:2: drop-table"}},
		{"DROP COLUMN of an existing table", []string{
			"-- +goose Up\nALTER TABLE orders DROP COLUMN region;\n"},
			[]string{"00002_b.sql:2: drop-column"}},
		{"drops in Down are fine: Down undoes Up", []string{
			"-- +goose Up\nCREATE TABLE t (n int);\nALTER TABLE orders ADD COLUMN note text;\n-- +goose Down\nALTER TABLE orders DROP COLUMN note;\nDROP TABLE t;\n"},
			[]string{}},
		{"dropping a table the migration created is fine", []string{
			"-- +goose Up\nCREATE TABLE tmp (n int);\nDROP TABLE tmp;\n"},
			[]string{}},

		// no-transaction-idempotent
		{"a NO TRANSACTION statement without IF NOT EXISTS", []string{
			"-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);\n"},
			[]string{"00002_b.sql:3: no-transaction-idempotent"}},
		{"every NO TRANSACTION statement that cannot run twice, Down included", []string{
			"-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE t (n int);\nALTER TABLE t ADD COLUMN m int;\nALTER TABLE orders ADD CONSTRAINT c CHECK (total > 0) NOT VALID;\n-- +goose Down\nDROP TABLE t;\n"},
			[]string{"00002_b.sql:3: no-transaction-idempotent", "00002_b.sql:4: no-transaction-idempotent",
				"00002_b.sql:5: no-transaction-idempotent", "00002_b.sql:7: no-transaction-idempotent"}},
		{"an idempotent NO TRANSACTION migration is fine", []string{
			"-- +goose NO TRANSACTION\n-- +goose Up\nCREATE TABLE IF NOT EXISTS t (n int);\nALTER TABLE t ADD COLUMN IF NOT EXISTS m int;\n" +
				"ALTER TABLE orders DROP CONSTRAINT IF EXISTS c;\nALTER TABLE orders ADD CONSTRAINT c CHECK (total > 0) NOT VALID;\n" +
				"CREATE OR REPLACE VIEW v AS SELECT 1;\n-- +goose Down\nDROP VIEW IF EXISTS v;\nDROP TABLE IF EXISTS t;\n"},
			[]string{}},

		// ignore comments
		{"an ignore comment with a reason silences its rule", []string{
			"-- +goose Up\n-- lint:ignore drop-table unused since release 41\nDROP TABLE customers;\n"},
			[]string{}},
		{"an ignore comment at the end of the statement's line works too", []string{
			"-- +goose Up\nALTER TABLE orders DROP COLUMN region; -- lint:ignore drop-column unused since release 41\n"},
			[]string{}},
		{"an ignore comment above StatementBegin works", []string{
			"-- +goose Up\n-- lint:ignore alter-column-type int to bigint on a table of 10 rows\n-- +goose StatementBegin\nALTER TABLE orders ALTER COLUMN id TYPE int;\n-- +goose StatementEnd\n"},
			[]string{}},
		{"an ignore comment silences only its rule", []string{
			"-- +goose Up\n-- lint:ignore drop-column unused since release 41\nALTER TABLE orders DROP COLUMN region, ALTER COLUMN total TYPE numeric(16, 2);\n"},
			[]string{"00002_b.sql:3: alter-column-type"}},
		{"two ignore comments silence two rules", []string{
			"-- +goose Up\n-- lint:ignore drop-column unused since release 41\n-- lint:ignore alter-column-type a tiny table\nALTER TABLE orders DROP COLUMN region, ALTER COLUMN total TYPE numeric(16, 2);\n"},
			[]string{}},
		{"an ignore comment without a reason is a finding and silences nothing", []string{
			"-- +goose Up\n-- lint:ignore drop-table\nDROP TABLE customers;\n"},
			[]string{"00002_b.sql:2: ignore", "00002_b.sql:3: drop-table"}},
		{"an ignore comment for an unknown rule is a finding", []string{
			"-- +goose Up\n-- lint:ignore drop-tables unused\nDROP TABLE customers;\n"},
			[]string{"00002_b.sql:2: ignore", "00002_b.sql:3: drop-table"}},
		{"a syntax error cannot be silenced", []string{
			"-- +goose Up\n-- lint:ignore syntax it works on my machine\nSELEC 1;\n"},
			[]string{"00002_b.sql:2: ignore", "00002_b.sql:3: syntax"}},
		{"an ignore comment for a rule that does not fire is a finding", []string{
			"-- +goose Up\n-- lint:ignore drop-table old habit\nALTER TABLE orders ADD COLUMN note text;\n"},
			[]string{"00002_b.sql:2: ignore"}},
		{"an ignore comment away from any statement is a finding", []string{
			"-- +goose Up\n-- lint:ignore drop-table unused since release 41\n\nDROP TABLE customers;\n"},
			[]string{"00002_b.sql:2: ignore", "00002_b.sql:4: drop-table"}},

		// lines
		{"findings name the line of each statement, CRLF line ends included", []string{
			"-- +goose Up\r\n-- a comment\r\n\r\nALTER TABLE orders ADD COLUMN a text;\r\n\r\nALTER TABLE orders\r\n    DROP COLUMN region;\r\nALTER TABLE orders ADD COLUMN a text;\r\n"},
			[]string{"00002_b.sql:6: drop-column"}},
		{"several SQL statements in one goose statement each have their own line", []string{
			"-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n\nDROP TABLE customers;\n-- +goose StatementEnd\n"},
			[]string{"00002_b.sql:5: drop-table"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, check(t, tt.migrations...))
		})
	}
}

func TestFindingSaysRiskAndFix(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"00001_base.sql":  {Data: []byte(base)},
		"00002_index.sql": {Data: []byte("-- +goose Up\nCREATE INDEX orders_total_idx ON orders (total);\n")},
	}
	rep, err := lint.Check(fsys)
	require.NoError(t, err)
	require.Len(t, rep.Findings, 1)
	require.Equal(t, "00002_index.sql:2: create-index-concurrently: CREATE INDEX on orders, a table this migration did not create, "+
		"blocks every write to it until the index is built\n"+
		"\tfix: CREATE INDEX CONCURRENTLY IF NOT EXISTS, alone in a migration marked -- +goose NO TRANSACTION", rep.Findings[0].String())
	require.Equal(t, []string{"00001_base.sql", "00002_index.sql"}, rep.Files)
}

func TestNoTransactionFindingsNameWhatToWrite(t *testing.T) {
	t.Parallel()
	rep, err := lint.Check(fstest.MapFS{
		"00001_base.sql": {Data: []byte(base)},
		"00002_idx.sql": {Data: []byte("-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);\n" +
			"-- +goose Down\nDROP INDEX CONCURRENTLY orders_total_idx;\n")},
	})
	require.NoError(t, err)
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.String())
	}
	require.Equal(t, []string{
		"00002_idx.sql:3: no-transaction-idempotent: CREATE INDEX without IF NOT EXISTS fails when a retry of this NO TRANSACTION migration runs it again\n" +
			"\tfix: DROP INDEX CONCURRENTLY IF EXISTS first (a failed CONCURRENTLY build leaves an INVALID index behind, which IF NOT EXISTS alone would keep), then CREATE INDEX CONCURRENTLY IF NOT EXISTS",
		"00002_idx.sql:5: no-transaction-idempotent: DROP INDEX without IF EXISTS fails when a retry of this NO TRANSACTION migration runs it again\n" +
			"\tfix: write every statement so it can run again: IF NOT EXISTS, IF EXISTS, OR REPLACE, or a DO block that checks the catalog first",
	}, got)
}

func TestSyntaxFindingQuotesPostgreSQL(t *testing.T) {
	t.Parallel()
	rep, err := lint.Check(fstest.MapFS{"00001_a.sql": {Data: []byte("-- +goose Up\nSELECT 1;\nCREAT TABLE t (id int);\n")}})
	require.NoError(t, err)
	require.Len(t, rep.Findings, 1)
	require.Equal(t, `00001_a.sql:3: syntax: PostgreSQL's parser rejects this statement: syntax error at or near "CREAT"`+
		"\n\tfix: correct the statement (up would stop here)", rep.Findings[0].String())
}

func TestGoMigrationsAreSkipped(t *testing.T) {
	t.Parallel()
	rep, err := lint.Check(fstest.MapFS{
		"00001_a.sql": {Data: []byte("-- +goose Up\nSELECT 1;\n")},
		"00002_b.go":  {Data: []byte("package migrations\n")},
	})
	require.NoError(t, err)
	require.Equal(t, []string{"00001_a.sql"}, rep.Files)
	require.Equal(t, []string{"00002_b.go"}, rep.Skipped)
	require.Empty(t, rep.Findings)
}

func TestCheckRejectsWhatItCannotLint(t *testing.T) {
	t.Parallel()
	_, err := lint.Check(nil)
	require.EqualError(t, err, "lint: fsys must not be nil")
	_, err = lint.Check(fstest.MapFS{"README.md": {Data: []byte("hi")}})
	require.EqualError(t, err, "lint: no SQL migration files (00001_name.sql …) at the root of the migrations directory")
	_, err = lint.Check(fstest.MapFS{
		"00001_a.sql": {Data: []byte("-- +goose Up\nSELECT 1;\n")},
		"00001_b.sql": {Data: []byte("-- +goose Up\nSELECT 1;\n")},
	})
	require.ErrorContains(t, err, "migrate validate names each problem")
}

// TestTheKitsMigrationsPass lints the migrations the kit ships: the
// example's (or, after make remove-example, the starter's in its place),
// the starter's, the outbox package's and the sample schema the README's
// "Start your own service" copies in.
func TestTheKitsMigrationsPass(t *testing.T) {
	t.Parallel()
	dirs := []string{"../../db/migrations"}
	for _, d := range []string{"../../tools/starter/migrations", "../../outbox/migrations", "../../internal/removeexample/testdata/tickets/db/migrations"} {
		if _, err := os.Stat(d); err == nil {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		rep, err := lint.Check(os.DirFS(d))
		require.NoError(t, err, d)
		require.NotEmpty(t, rep.Files, d)
		var got []string
		for _, f := range rep.Findings {
			got = append(got, f.String())
		}
		require.Empty(t, got, d)
	}
}

func TestEveryRuleIsDocumented(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, r := range lint.Rules() {
		require.NotEmpty(t, r.Trigger, r.Name)
		require.NotEmpty(t, r.Risk, r.Name)
		require.NotEmpty(t, r.Fix, r.Name)
		require.True(t, strings.Contains(string(readme), "`"+r.Name+"`"), "README.md does not document rule %s", r.Name)
	}
}
