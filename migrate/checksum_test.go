package migrate_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/migrate"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// recorded returns the checksum table, version → sha256.
func recorded(t *testing.T, db *sql.DB) map[int64]string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT version, sha256 FROM "+migrate.ChecksumTable)
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	out := map[int64]string{}
	for rows.Next() {
		var v int64
		var s string
		require.NoError(t, rows.Scan(&v, &s))
		out[v] = s
	}
	require.NoError(t, rows.Err())
	return out
}

const (
	fileA  = "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n"
	fileB  = "-- +goose Up\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n"
	fileB2 = "-- +goose Up\n-- now with a comment\nCREATE TABLE b (id int);\n-- +goose Down\nDROP TABLE b;\n"
	fileC  = "-- +goose Up\nCREATE TABLE c (id int);\n-- +goose Down\nDROP TABLE c;\n"
)

func TestChecksumsAreRecordedOnUpAndDroppedOnDown(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	sdb := sqlDB(t, url)
	ctx := t.Context()
	m := open(t, url, files("00001_a.sql", fileA, "00002_b.sql", fileB))

	_, err := m.Up(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int64]string{1: sum(fileA), 2: sum(fileB)}, recorded(t, sdb))
	require.Empty(t, m.Baselined())

	_, err = m.Down(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int64]string{1: sum(fileA)}, recorded(t, sdb))

	_, err = m.Redo(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int64]string{1: sum(fileA)}, recorded(t, sdb))

	_, err = m.Reset(ctx)
	require.NoError(t, err)
	require.Empty(t, recorded(t, sdb))
}

func TestUpRefusesAChangedAppliedFileUntilAccepted(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	sdb := sqlDB(t, url)
	ctx := t.Context()
	_, err := open(t, url, files("00001_a.sql", fileA, "00002_b.sql", fileB)).Up(ctx)
	require.NoError(t, err)

	changed := files("00001_a.sql", fileA, "00002_b.sql", fileB2, "00003_c.sql", fileC)
	m := open(t, url, changed)
	want := fmt.Sprintf("applied migration changed: 00002_b.sql changed since it was applied (recorded sha256 %s, file now %s): "+
		"restore the file, or accept its new text (WithAcceptDrift, -accept-drift)", sum(fileB), sum(fileB2))
	for name, op := range map[string]func(context.Context) ([]migrate.Result, error){
		"up": m.Up, "up-by-one": m.UpByOne, "redo": m.Redo,
		"up-to 3": func(ctx context.Context) ([]migrate.Result, error) { return m.UpTo(ctx, 3) },
	} {
		rs, err := op(ctx)
		require.EqualError(t, err, "migrate "+name+": "+want)
		require.ErrorIs(t, err, migrate.ErrDrift)
		require.Empty(t, rs)
	}
	require.False(t, tableExists(t, sdb, "c"), "nothing ran")
	require.Equal(t, []int64{1, 2}, appliedVersions(t, sdb))

	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.False(t, st[0].Drift)
	require.True(t, st[1].Drift)
	require.Equal(t, sum(fileB), st[1].RecordedChecksum)
	require.Equal(t, sum(fileB2), st[1].Checksum)
	require.False(t, st[2].Drift, "pending")

	_, err = open(t, url, changed, migrate.WithAcceptDrift()).Up(ctx)
	require.NoError(t, err)
	require.True(t, tableExists(t, sdb, "c"))
	require.Equal(t, map[int64]string{1: sum(fileA), 2: sum(fileB2), 3: sum(fileC)}, recorded(t, sdb))
	_, err = m.Up(ctx)
	require.NoError(t, err, "the new text is the recorded one now")
}

func TestMigrationsAppliedBeforeChecksumsAreRecordedOnTheNextUp(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	sdb := sqlDB(t, url)
	ctx := t.Context()
	two := files("00001_a.sql", fileA, "00002_b.sql", fileB)
	p, err := goose.NewProvider(goose.DialectPostgres, sdb, two, goose.WithDisableGlobalRegistry(true))
	require.NoError(t, err)
	_, err = p.Up(ctx) // plain goose: no checksums
	require.NoError(t, err)

	m := open(t, url, files("00001_a.sql", fileA, "00002_b.sql", fileB, "00003_c.sql", fileC))
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.Empty(t, st[0].RecordedChecksum)
	require.False(t, st[0].Drift)

	_, err = m.Up(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"00001_a.sql", "00002_b.sql"}, m.Baselined())
	require.Equal(t, map[int64]string{1: sum(fileA), 2: sum(fileB), 3: sum(fileC)}, recorded(t, sdb))
}

func TestChecksumsWithTheTableLock(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	sdb := sqlDB(t, url)
	ctx := t.Context()
	_, err := open(t, url, files("00001_a.sql", fileA, "00002_b.sql", fileB), migrate.WithTableLock()).Up(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int64]string{1: sum(fileA), 2: sum(fileB)}, recorded(t, sdb))
	_, err = open(t, url, files("00001_a.sql", fileA, "00002_b.sql", fileB2), migrate.WithTableLock()).Up(ctx)
	require.ErrorIs(t, err, migrate.ErrDrift)
	// The lock was released: another migrator gets it at once.
	_, err = open(t, url, files("00001_a.sql", fileA, "00002_b.sql", fileB), migrate.WithTableLock()).Down(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int64]string{1: sum(fileA)}, recorded(t, sdb))
}

func TestMissingMigrationNeedsAllowMissing(t *testing.T) {
	t.Parallel()
	url := emptyDB(t)
	sdb := sqlDB(t, url)
	ctx := t.Context()
	_, err := open(t, url, files("00001_a.sql", fileA, "00003_c.sql", fileC)).Up(ctx)
	require.NoError(t, err)

	late := fstest.MapFS{
		"00001_a.sql": {Data: []byte(fileA)},
		"00002_b.sql": {Data: []byte(fileB)}, // merged late
		"00003_c.sql": {Data: []byte(fileC)},
	}
	_, err = open(t, url, late).Up(ctx)
	require.EqualError(t, err, "migrate up: missing migrations: 00002_b.sql not applied but older than the database version 3 "+
		"(a branch merged late?): apply them out of order (WithAllowMissing, -allow-missing), or renumber them after 3")
	require.True(t, errors.Is(err, migrate.ErrMissing))
	require.False(t, tableExists(t, sdb, "b"))

	rs, err := open(t, url, late, migrate.WithAllowMissing()).Up(ctx)
	require.NoError(t, err)
	require.Len(t, rs, 1)
	require.Equal(t, "00002_b.sql", rs[0].File)
	require.True(t, tableExists(t, sdb, "b"))
	require.Equal(t, []int64{1, 3, 2}, appliedVersions(t, sdb))
	require.Equal(t, map[int64]string{1: sum(fileA), 2: sum(fileB), 3: sum(fileC)}, recorded(t, sdb))
}
