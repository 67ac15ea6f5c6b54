package migrate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/migrate"
)

const (
	upA   = "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n"
	upB   = "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n"
	funcC = `-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION c() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    RETURN 1;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION c();
`
)

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		want []string // substrings of the error; none: valid
	}{
		{name: "sequential files with Up and Down are valid",
			fsys: files("00001_a.sql", upA, "00002_b.sql", upB, "00003_c.sql", funcC, "README.md", "notes", "helpers_test.go", "package x")},
		{name: "NO TRANSACTION and ENVSUB annotations are valid",
			fsys: files("00001_a.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON a (id);\n-- +goose Down\nDROP INDEX CONCURRENTLY IF EXISTS i;\n")},
		{name: "Go migration files are checked by name only",
			fsys: files("00001_a.sql", upA, "00002_backfill.go", "package migrations")},
		{name: "an empty directory is an error",
			fsys: files("README.md", "x"),
			want: []string{"no migration files"}},
		{name: "a file name without a number is reported",
			fsys: files("00001_a.sql", upA, "b.sql", upB),
			want: []string{"b.sql: name must be NNNNN_name.sql"}},
		{name: "a dash instead of an underscore is reported",
			fsys: files("00001_a.sql", upA, "00002-b.sql", upB),
			want: []string{"00002-b.sql: name must be NNNNN_name.sql"}},
		{name: "a number without a name is reported",
			fsys: files("00001_a.sql", upA, "00002_.sql", upB),
			want: []string{"00002_.sql: name must be NNNNN_name.sql"}},
		{name: "a duplicate version is reported with both files",
			fsys: files("00001_a.sql", upA, "00002_b.sql", upB, "00002_c.sql", upB),
			want: []string{"00002_c.sql: version 2 already used by 00002_b.sql"}},
		{name: "a gap in the sequence is reported",
			fsys: files("00001_a.sql", upA, "00003_b.sql", upB),
			want: []string{"00003_b.sql: version 3 out of sequence: want 00002"}},
		{name: "a timestamp version in a sequential project is reported",
			fsys: files("00001_a.sql", upA, "00002_b.sql", upB, "20240101120000_c.sql", upB),
			want: []string{"20240101120000_c.sql: timestamp version 20240101120000 in a project numbered sequentially " +
				"(as most of its files are): renumber it with migrate fix, or choose timestamps (-numbering timestamp, WithNumbering)"}},
		{name: "an empty Down with a reason is valid",
			fsys: files("00001_a.sql", "-- +goose Up\nDROP TABLE IF EXISTS legacy;\n-- +goose Down\n-- migrate:no-down the dropped rows cannot come back\n")},
		{name: "an empty Down with the annotation but no reason is reported",
			fsys: files("00001_a.sql", "-- +goose Up\nSELECT 1;\n-- +goose Down\n-- migrate:no-down\n"),
			want: []string{"00001_a.sql:4: say why Down is empty after -- migrate:no-down (-- migrate:no-down the dropped rows cannot come back)"}},
		{name: "the no-down annotation on a file with a Down section is reported",
			fsys: files("00001_a.sql", "-- migrate:no-down never\n"+upA),
			want: []string{"00001_a.sql:1: -- migrate:no-down, but the Down section is not empty: remove one of them"}},
		{name: "an empty Down says how to accept it",
			fsys: files("00001_a.sql", "-- +goose Up\nSELECT 1;\n"),
			want: []string{"00001_a.sql: Down section is empty: write the statements that undo Up after -- +goose Down, " +
				"or say why it cannot be undone in a line -- migrate:no-down REASON"}},
		{name: "goose's timestamp numbering is valid when every file uses it",
			fsys: files("20261201190800_a.sql", upA, "20261215093000_b.sql", upB, "20270102000000_c.sql", funcC)},
		{name: "a 14-digit number that is no time counts as sequential",
			fsys: files("99999999999999_a.sql", upA),
			want: []string{"99999999999999_a.sql: version 99999999999999 out of sequence: want 00001"}},
		{name: "sequences start at 1",
			fsys: files("00002_a.sql", upA),
			want: []string{"00002_a.sql: version 2 out of sequence: want 00001"}},
		{name: "an unknown annotation is reported",
			fsys: files("00001_a.sql", "-- +goose Up\nSELECT 1;\n-- +goose Dwn\nSELECT 1;\n"),
			want: []string{"00001_a.sql: ", `"Dwn" not supported`}},
		{name: "a file without an Up annotation is reported",
			fsys: files("00001_a.sql", "CREATE TABLE a (id int);\n"),
			want: []string{"00001_a.sql: failed to parse migration"}},
		{name: "StatementBegin without StatementEnd is reported",
			fsys: files("00001_a.sql", "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n-- +goose Down\nSELECT 1;\n"),
			want: []string{"00001_a.sql: "}},
		{name: "a statement missing its semicolon is reported",
			fsys: files("00001_a.sql", "-- +goose Up\nCREATE TABLE a (id int)\n-- +goose Down\nDROP TABLE a;\n"),
			want: []string{"00001_a.sql: ", "missing semicolon"}},
		{name: "a file without a Down section is reported",
			fsys: files("00001_a.sql", "-- +goose Up\nCREATE TABLE a (id int);\n"),
			want: []string{"00001_a.sql: Down section is empty"}},
		{name: "a Down section with only comments is reported",
			fsys: files("00001_a.sql", "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\n-- nothing to undo\n"),
			want: []string{"00001_a.sql: Down section is empty"}},
		{name: "an annotation in another case, which goose reads as a comment, is reported with its line",
			fsys: files("00001_a.sql", "-- +goose Up\nCREATE TABLE a (id int);\n-- +GOOSE Down\nDROP TABLE a;\n-- +goose Down\nDROP TABLE a;\n"),
			want: []string{`00001_a.sql:3: "-- +GOOSE Down" looks like a goose annotation, but goose reads it as a comment: write +goose in lower case (-- +goose Down)`}},
		{name: "an annotation goose reads as another is reported with its line",
			fsys: files("00001_a.sql", "-- +goose Up\nSELECT 1;\n-- +goose Do--wn\nSELECT 2;\n"),
			want: []string{`00001_a.sql:3: goose reads "-- +goose Do--wn" as -- +goose Down: write that`}},
		{name: "a backslash in a file name is part of it",
			fsys: files(`00001_a\b.sql`, "SELECT 1;\n"),
			want: []string{`00001_a\b.sql: failed to parse migration`}},
		{name: "every problem is reported at once",
			fsys: files("00001_a.sql", "-- +goose Up\nSELECT 1;\n", "00002_b.sql", "SELECT 1;\n", "00004_c.sql", upA),
			want: []string{"00001_a.sql: Down section is empty", "00002_b.sql: ", "00004_c.sql: version 4 out of sequence"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := migrate.Validate(tc.fsys)
			if len(tc.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	t.Parallel()
	t.Run("numbers after the highest version and validates", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "00001_a.sql"), []byte(upA), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "00002_b.sql"), []byte(upB), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))

		got, err := migrate.Create(dir, "Add invoices", "")
		require.NoError(t, err)
		require.Equal(t, filepath.Join(dir, "00003_add_invoices.sql"), got)
		body, err := os.ReadFile(got)
		require.NoError(t, err)
		require.Contains(t, string(body), "-- +goose Up\n")
		require.Contains(t, string(body), "-- +goose Down\n")
		require.NoError(t, migrate.Validate(os.DirFS(dir)), "a new file is valid as written")

		got, err = migrate.Create(dir, "AddPayments", "sql")
		require.NoError(t, err)
		require.Equal(t, filepath.Join(dir, "00004_add_payments.sql"), got)
	})
	t.Run("numbers past gaps from the highest version", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "00011_k.sql"), []byte(upA), 0o644))
		got, err := migrate.Create(dir, "invoices", "sql")
		require.NoError(t, err)
		require.Equal(t, "00012_invoices.sql", filepath.Base(got))
	})
	t.Run("starts at 00001 in an empty directory", func(t *testing.T) {
		t.Parallel()
		got, err := migrate.Create(t.TempDir(), "init", "sql")
		require.NoError(t, err)
		require.Equal(t, "00001_init.sql", filepath.Base(got))
	})
	t.Run("writes a Go migration for goose.NewGoMigration", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "00001_a.sql"), []byte(upA), 0o644))
		got, err := migrate.Create(dir, "backfill totals", "go")
		require.NoError(t, err)
		require.Equal(t, "00002_backfill_totals.go", filepath.Base(got))
		body, err := os.ReadFile(got)
		require.NoError(t, err)
		require.Contains(t, string(body), "var Migration00002BackfillTotals = goose.NewGoMigration(2,")
		require.Contains(t, string(body), "package migrations")
	})
	t.Run("writes a Go migration into the gomigrations package, numbered with the SQL files", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "00001_a.sql"), []byte(upA), 0o644))
		require.NoError(t, os.Mkdir(filepath.Join(dir, migrate.GoPackageDir), 0o755))
		got, err := migrate.Create(dir, "backfill", "go")
		require.NoError(t, err)
		require.Equal(t, filepath.Join(dir, "gomigrations", "00002_backfill.go"), got)
		body, err := os.ReadFile(got)
		require.NoError(t, err)
		require.Contains(t, string(body), "package gomigrations\n")
		require.Contains(t, string(body), "var _ = register(goose.NewGoMigration(2,")
		got, err = migrate.Create(dir, "after", "sql")
		require.NoError(t, err)
		require.Equal(t, filepath.Join(dir, "00003_after.sql"), got, "SQL numbering counts the Go package's files")
	})
	for _, tc := range []struct{ name, dir, mname, kind, want string }{
		{"rejects an unknown kind", "", "x", "yaml", `kind "yaml": want "sql" or "go"`},
		{"rejects a name without letters", "", " -- ", "sql", "needs at least one letter or digit"},
		{"names a missing directory", "/nonexistent/migrations", "x", "sql", "set -dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := tc.dir
			if dir == "" {
				dir = t.TempDir()
			}
			_, err := migrate.Create(dir, tc.mname, tc.kind)
			require.ErrorContains(t, err, tc.want)
			entries, _ := os.ReadDir(dir)
			require.Empty(t, entries, "nothing written")
		})
	}
}

func TestValidateWithGoMigrations(t *testing.T) {
	t.Parallel()
	goMig := func(v int64, source string) *goose.Migration {
		m := goose.NewGoMigration(v, &goose.GoFunc{}, &goose.GoFunc{})
		m.Source = source
		return m
	}
	sql := files("00001_a.sql", upA, "00003_c.sql", upB)
	require.NoError(t, migrate.Validate(sql, migrate.WithGoMigrations(goMig(2, "00002_b.go"))), "the Go migration fills the gap")
	require.EqualError(t, migrate.Validate(sql),
		"validate: 00003_c.sql: version 3 out of sequence: want 00002 (versions run 1, 2, 3 … without gaps)")
	require.EqualError(t, migrate.Validate(sql, migrate.WithGoMigrations(goMig(2, "00002_b.go"), goMig(3, "00003_x.go"))),
		"validate: 00003_x.go: version 3 already used by 00003_c.sql")
	require.NoError(t, migrate.Validate(files("00001_a.sql", upA, "00002_b.go", "package x"), migrate.WithGoMigrations(goMig(2, "00002_b.go"))),
		"a registered migration whose file is in fsys (goose's own layout) counts once")
}

func TestValidateNumberingChosenPerProject(t *testing.T) {
	t.Parallel()
	stamped := files("20261201190800_a.sql", upA, "20261202080000_b.sql", upB)
	mixed := files("20261201190800_a.sql", upA, "20261202080000_b.sql", upB, "00003_c.sql", upB)
	sequential := files("00001_a.sql", upA, "00002_b.sql", upB)
	for _, tc := range []struct {
		name      string
		fsys      fstest.MapFS
		numbering migrate.Numbering
		want      string
	}{
		{"timestamps are valid when the first migration has one", stamped, migrate.NumberingAuto, ""},
		{"timestamps are valid when pinned", stamped, migrate.NumberingTimestamp, ""},
		{"sequential files are valid when pinned", sequential, migrate.NumberingSequential, ""},
		{"a sequential file among timestamps: most files decide", mixed, migrate.NumberingAuto,
			"validate: 00003_c.sql: sequential version 3 in a project numbered by timestamps (as most of its files are): " +
				"name it YYYYMMDDhhmmss_name, or number the project sequentially (migrate fix, -numbering sequential)"},
		{"timestamps in a project pinned sequential", stamped, migrate.NumberingSequential,
			"validate: 20261201190800_a.sql: timestamp version 20261201190800 in a project numbered sequentially (pinned by -numbering / WithNumbering): " +
				"renumber it with migrate fix, or choose timestamps (-numbering timestamp, WithNumbering)\n" +
				"20261202080000_b.sql: timestamp version 20261202080000 in a project numbered sequentially (pinned by -numbering / WithNumbering): " +
				"renumber it with migrate fix, or choose timestamps (-numbering timestamp, WithNumbering)"},
		{"sequential files in a project pinned to timestamps", sequential, migrate.NumberingTimestamp,
			"validate: 00001_a.sql: sequential version 1 in a project numbered by timestamps (pinned by -numbering / WithNumbering): " +
				"name it YYYYMMDDhhmmss_name, or number the project sequentially (migrate fix, -numbering sequential)\n" +
				"00002_b.sql: sequential version 2 in a project numbered by timestamps (pinned by -numbering / WithNumbering): " +
				"name it YYYYMMDDhhmmss_name, or number the project sequentially (migrate fix, -numbering sequential)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := migrate.Validate(tc.fsys, migrate.WithNumbering(tc.numbering))
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tc.want)
		})
	}
	require.EqualError(t, migrate.Validate(sequential, migrate.WithNumbering("roman")),
		`validate: WithNumbering: numbering "roman": want sequential, timestamp or auto`)
}

func TestCreateFollowsTheNumbering(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "20261201190800_a.sql"), []byte(upA), 0o644))
	before := time.Now().UTC().Truncate(time.Second)
	got, err := migrate.Create(dir, "b", "sql")
	require.NoError(t, err)
	stamp, _, _ := strings.Cut(filepath.Base(got), "_")
	at, err := time.Parse("20060102150405", stamp)
	require.NoError(t, err, "a timestamped project gets a timestamp: %s", got)
	require.False(t, at.Before(before), "%s is the current UTC time", stamp)
	require.NoError(t, migrate.Validate(os.DirFS(dir)))

	empty := t.TempDir()
	got, err = migrate.Create(empty, "first", "sql", migrate.WithNumbering(migrate.NumberingTimestamp))
	require.NoError(t, err)
	require.Regexp(t, `^\d{14}_first\.sql$`, filepath.Base(got), "an empty project pinned to timestamps")
}

func TestFix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	write("00001_a.sql", upA)
	write("00002_b.sql", upB)
	write("20261202080000_d.sql", upB)
	write("20261201190800_c.sql", upA)
	write("gomigrations/20261203000000_e.go", "package gomigrations\n\nvar _ = register(goose.NewGoMigration(20261203000000, nil, nil))\n")

	got, err := migrate.Fix(dir)
	require.NoError(t, err)
	require.Equal(t, []migrate.Renamed{
		{From: filepath.Join(dir, "20261201190800_c.sql"), To: filepath.Join(dir, "00003_c.sql")},
		{From: filepath.Join(dir, "20261202080000_d.sql"), To: filepath.Join(dir, "00004_d.sql")},
		{From: filepath.Join(dir, "gomigrations", "20261203000000_e.go"), To: filepath.Join(dir, "gomigrations", "00005_e.go")},
	}, got)
	body, err := os.ReadFile(filepath.Join(dir, "gomigrations", "00005_e.go"))
	require.NoError(t, err)
	require.Contains(t, string(body), "goose.NewGoMigration(5, nil, nil)")
	require.NoFileExists(t, filepath.Join(dir, "gomigrations", "20261203000000_e.go"))
	require.NoError(t, migrate.Validate(os.DirFS(dir)), "sequential again")

	got, err = migrate.Fix(dir)
	require.NoError(t, err)
	require.Empty(t, got, "nothing left to fix")

	write("20261204000000_f.go", "package x\n")
	_, err = migrate.Fix(dir)
	require.EqualError(t, err, "fix: nothing renamed: "+filepath.Join(dir, "20261204000000_f.go")+
		": has 0 calls NewGoMigration(20261204000000,…) where 1 was expected: renumber it by hand")
	require.FileExists(t, filepath.Join(dir, "20261204000000_f.go"))
}
