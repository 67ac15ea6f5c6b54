package dbtest_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/uow"
)

// noteBodies reads the bodies of notes visible to q.
func noteBodies(t *testing.T, ctx context.Context, q uow.DBTX) []string {
	t.Helper()
	rows, err := q.Query(ctx, "SELECT body FROM notes ORDER BY body")
	require.NoError(t, err)
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return bodies
}

// committedNotes counts the notes committed in database name of the shared server.
func committedNotes(t *testing.T, name string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbtest.Server(t).URLFor(name))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM notes").Scan(&n))
	return n
}

func TestTxRunsRepositoryCodeAndRollsBack(t *testing.T) {
	t.Parallel()
	var dbName string
	var rolledBack error
	t.Run("test", func(t *testing.T) {
		ctx, pool := dbtest.Tx(t, dbtest.WithMigrations(notes))
		dbName = pool.Config().ConnConfig.Database
		u := uow.New(pool, func(d uow.DBTX) uow.DBTX { return d })

		_, err := u.Queries(ctx).Exec(ctx, "INSERT INTO notes (body) VALUES ('outer')")
		require.NoError(t, err)
		committed := false
		require.NoError(t, u.Do(ctx, func(ctx context.Context, q uow.DBTX) error {
			uow.AfterCommit(ctx, func(context.Context) { committed = true })
			_, err := q.Exec(ctx, "INSERT INTO notes (body) VALUES ('nested')")
			return err
		}))
		failed := errors.New("nested failure")
		err = u.Do(ctx, func(ctx context.Context, q uow.DBTX) error {
			if _, err := q.Exec(ctx, "INSERT INTO notes (body) VALUES ('rolled back')"); err != nil {
				return err
			}
			return failed
		})
		require.ErrorIs(t, err, failed)
		uow.AfterRollback(ctx, func(_ context.Context, err error) { rolledBack = err })

		require.Equal(t, []string{"nested", "outer"}, noteBodies(t, ctx, u.DB(ctx)),
			"a nested Do is a savepoint: its failure undoes only its own rows")
		require.False(t, committed, "nothing commits")
		require.Zero(t, committedNotes(t, dbName), "no other session sees the rows")
	})
	require.Zero(t, committedNotes(t, dbName), "the transaction was rolled back")
	require.Error(t, rolledBack, "AfterRollback hooks run when the test ends")
}

func TestTxPoolRefusesWritesOutsideTheTransaction(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.Tx(t, dbtest.WithMigrations(notes))
	_, err := pool.Exec(t.Context(), "INSERT INTO notes (body) VALUES ('escaped')")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, pgerrcode.ReadOnlySQLTransaction, pgErr.Code)

	u := uow.New(pool, func(d uow.DBTX) uow.DBTX { return d })
	err = u.Do(t.Context(), func(ctx context.Context, q uow.DBTX) error {
		_, err := q.Exec(ctx, "INSERT INTO notes (body) VALUES ('escaped')")
		return err
	})
	require.ErrorAs(t, err, &pgErr, "a unit of work begun from another ctx is outside the test's transaction")
	require.Equal(t, pgerrcode.ReadOnlySQLTransaction, pgErr.Code)
	require.Zero(t, committedNotes(t, pool.Config().ConnConfig.Database))
}

func TestParallelTxTestsShareTheDatabaseNotTheirRows(t *testing.T) {
	t.Parallel()
	names := inParallel(t, func(t *testing.T, me string) string {
		ctx, pool := dbtest.Tx(t, dbtest.WithMigrations(notes))
		u := uow.New(pool, func(d uow.DBTX) uow.DBTX { return d })
		_, err := u.DB(ctx).Exec(ctx, "INSERT INTO notes (body) VALUES ($1)", me)
		require.NoError(t, err)
		require.Equal(t, []string{me}, noteBodies(t, ctx, u.DB(ctx)))
		return pool.Config().ConnConfig.Database
	})
	require.Len(t, slices.Compact(names), 1, "one shared database")
	require.Zero(t, committedNotes(t, names[0]))
}

func TestTxMigratesPerOption(t *testing.T) {
	t.Parallel()
	ctx, pool := dbtest.Tx(t)
	u := uow.New(pool, func(d uow.DBTX) uow.DBTX { return d })
	require.Equal(t, latestVersion(t), gooseVersion(t, u.DB(ctx)))
	_, empty := dbtest.Tx(t, dbtest.WithoutMigrations())
	require.NotEqual(t, pool.Config().ConnConfig.Database, empty.Config().ConnConfig.Database)
}
