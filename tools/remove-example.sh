#!/usr/bin/env bash
# tools/remove-example.sh: make remove-example. Takes the example ERP
# application out of the kit and leaves a one-table starter (tools/starter:
# db/migrations/00001_notes.sql and db/queries/notes.sql) so that sqlc has a
# schema and db.Migrations something to embed; then runs make generate, which
# drops the example's files from dbgen/.
#
# It refuses to run on a work tree with uncommitted changes (or outside a git
# work tree) unless FORCE=1: commit first, and git shows you what it removed.
# Safe to run twice: once the example is gone it says so and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}

# The example, and only the example. A file added to the example belongs here
# too: internal/removeexample's test fails while the copy keeps any of it.
example=(
  erp
  cmd/demo
  db/migrations/00001_customers.sql
  db/migrations/00002_products.sql
  db/migrations/00003_stock_levels.sql
  db/migrations/00004_coupons.sql
  db/migrations/00005_orders.sql
  db/migrations/00006_ledger.sql
  db/migrations/00007_ledger_chart_of_accounts.sql
  db/migrations/00008_outbox.sql
  db/migrations/00009_drop_outbox.sql
  db/queries/coupons.sql
  db/queries/customers.sql
  db/queries/ledger.sql
  db/queries/order_lines.sql
  db/queries/orders.sql
  db/queries/products.sql
  db/queries/stock_levels.sql
  # Tests that exist only for the example: the README's user's day on its
  # tables, its invariants after concurrent workloads, and the same workload
  # behind PgBouncer (pgbouncer_test.go keeps cmd/migrate -pgbouncer).
  integration/usersday_test.go
  integration/workload_test.go
  integration/pgbouncer_workload_test.go
  # The bench's bulk load into the example's products table; the bench runs
  # without it and says so.
  internal/bench/load_products.go
)

present=()
for p in "${example[@]}"; do
  if [ -e "$p" ]; then present+=("$p"); fi
done
if [ ${#present[@]} -eq 0 ]; then
  echo "remove-example: nothing to do, the example is already removed"
  exit 0
fi

if [ "${FORCE:-}" != 1 ]; then
  if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "remove-example: not a git work tree, so nothing shows what it removes; run with FORCE=1 to remove anyway" >&2
    exit 1
  fi
  if [ -n "$(git status --porcelain)" ]; then
    echo "remove-example: the work tree has uncommitted changes (git status); commit them first, or run make remove-example FORCE=1" >&2
    exit 1
  fi
fi

for p in "${present[@]}"; do
  rm -rf -- "$p"
  echo "removed $p"
done

# The starter, where the example leaves no migration or no query behind.
for kind in migrations queries; do
  if ! compgen -G "db/$kind/*.sql" >/dev/null; then
    mkdir -p "db/$kind"
    for f in tools/starter/"$kind"/*.sql; do
      cp "$f" "db/$kind/"
      echo "added db/$kind/$(basename "$f") (the starter: replace it with your own)"
    done
  fi
done

"$MAKE" --no-print-directory generate
echo "remove-example: done; review with git status, then commit"
