package uow_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cortexerp/datalayer/dbtest"
	"github.com/cortexerp/datalayer/localpg"
	"github.com/cortexerp/datalayer/uow"
)

var (
	exampleOnce sync.Once
	examplePool *pgxpool.Pool
	exampleDrop func() // drops the examples' database (on an opted-in server it would stay)
)

// pool returns a pool on a fresh database holding the test schema, for the
// examples (which have no *testing.T to ask dbtest for one).
func pool() *pgxpool.Pool {
	exampleOnce.Do(func() {
		ctx := context.Background()
		// Like dbtest: a server of the environment only when opted in.
		srv, err := localpg.Start(ctx, localpg.WithEnvVars(dbtest.DatabaseURLEnv))
		if err != nil {
			panic(err)
		}
		admin, err := pgx.Connect(ctx, srv.URL())
		if err != nil {
			panic(err)
		}
		defer admin.Close(ctx)
		name := fmt.Sprintf("uow_examples_%d", os.Getpid())
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name)
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			panic(err)
		}
		exampleDrop = func() {
			if c, err := pgx.Connect(ctx, srv.URL()); err == nil {
				_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
				_ = c.Close(ctx)
			}
		}
		examplePool, err = pgxpool.New(ctx, srv.URLFor(name))
		if err != nil {
			panic(err)
		}
		if _, err := examplePool.Exec(ctx, schema); err != nil {
			panic(err)
		}
	})
	return examplePool
}

func Example() {
	ctx := context.Background()
	u := uow.New(pool(), newStore) // with sqlc: uow.New(pool, dbgen.New)

	err := u.Do(ctx, func(ctx context.Context, q *store) error {
		if err := q.put(ctx, 100, "order"); err != nil {
			return err
		}
		// Nested: a savepoint. Its failure rolls back only this part.
		err := u.Do(ctx, func(ctx context.Context, q *store) error {
			if err := q.put(ctx, 101, "coupon"); err != nil {
				return err
			}
			return errors.New("coupon expired")
		})
		fmt.Println("nested:", err)
		uow.AfterCommit(ctx, func(context.Context) { fmt.Println("committed: notify the warehouse") })
		return nil
	}, uow.Isolation(pgx.RepeatableRead), uow.Retry(uow.DefaultRetry))
	fmt.Println("outer:", err)

	n, _ := u.Queries(ctx).count(ctx)
	fmt.Println("rows:", n)
	// Output:
	// nested: coupon expired
	// committed: notify the warehouse
	// outer: <nil>
	// rows: 1
}

func ExampleDoResult() {
	ctx := context.Background()
	u := uow.New(pool(), newStore)
	balance, err := uow.DoResult(ctx, u, func(ctx context.Context, q *store) (int, error) {
		var b int
		err := q.db.QueryRow(ctx, "UPDATE accounts SET balance = balance + 5 WHERE id = 2 RETURNING balance").Scan(&b)
		return b, err
	}, uow.Name("deposit"))
	fmt.Println(balance, err)
	// Output: 105 <nil>
}

func ExampleAttempt() {
	ctx := context.Background()
	u := uow.New(pool(), newStore)
	err := u.Do(ctx, func(ctx context.Context, q *store) error {
		fmt.Println("attempt", uow.Attempt(ctx))
		// Fails with a serialization failure (40001) on the first attempt only.
		_, err := q.db.Exec(ctx, "SELECT fail_first($1, '40001')", uow.Attempt(ctx))
		return err
	}, uow.Retry(uow.DefaultRetry))
	fmt.Println(err)
	// Output:
	// attempt 1
	// attempt 2
	// <nil>
}

func ExampleUnitOfWork_Do_readOnly() {
	ctx := context.Background()
	u := uow.New(pool(), newStore)
	err := u.Do(ctx, func(ctx context.Context, q *store) error {
		return q.put(ctx, 200, "refused")
	}, uow.ReadOnly())
	fmt.Println(err)
	// Output: uow: write in a read-only unit of work (the ReadOnly option, which WithReplicas and WithReplicaSet send to a read replica: drop it to write): ERROR: cannot execute INSERT in a read-only transaction (SQLSTATE 25006)
}

// Reads go to streaming replicas that are within a lag bound, and a user
// reads their own writes from a replica once it has replayed them.
func ExampleNewReplicaSet() {
	ctx := context.Background()
	var primary *pgxpool.Pool    // the primary's pool
	var replicas []*pgxpool.Pool // one pool per streaming replica
	rs, err := uow.NewReplicaSet(primary, replicas, uow.ReplicaMaxLag(2*time.Second), uow.ReplicaTokenWait(100*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer rs.Close()
	u := uow.New(primary, newStore, uow.WithReplicaSet(rs))

	var tok uow.Token // kept with the user's session, e.g. tok.String() in a cookie
	if err := u.Do(ctx, func(ctx context.Context, q *store) error {
		return q.put(ctx, 7, "written on the primary")
	}, uow.CaptureToken(&tok)); err != nil {
		log.Fatal(err)
	}
	// On a replica that has replayed tok, else on the primary.
	n, err := uow.DoResult(uow.ContextWithToken(ctx, tok), u, func(ctx context.Context, q *store) (int, error) {
		return q.count(ctx)
	}, uow.ReadOnly())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n)
}
