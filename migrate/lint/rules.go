//go:build migratelint

package lint

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	pg "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
)

// The rules' names, as findings and -- lint:ignore comments write them.
const (
	RuleSyntax                    = "syntax"
	RuleStatementBegin            = "statement-begin"
	RuleCreateIndexConcurrently   = "create-index-concurrently"
	RuleAddColumnNotNull          = "add-column-not-null"
	RuleAddColumnRewrite          = "add-column-rewrite"
	RuleAlterColumnType           = "alter-column-type"
	RuleSetNotNull                = "set-not-null"
	RuleConstraintNotValid        = "constraint-not-valid"
	RuleRenameTable               = "rename-table"
	RuleRenameColumn              = "rename-column"
	RuleDropTable                 = "drop-table"
	RuleDropColumn                = "drop-column"
	RuleConcurrentlyInTransaction = "concurrently-in-transaction"
	RuleNoTransactionIdempotent   = "no-transaction-idempotent"
	RuleIgnore                    = "ignore"
)

// Rule describes one check of the linter.
type Rule struct {
	Name      string // as written in findings and -- lint:ignore comments
	Trigger   string // a statement that triggers it
	Risk      string // what goes wrong
	Fix       string // the safe pattern
	Ignorable bool   // whether -- lint:ignore can silence it (not for what up would reject)
}

var rules = []Rule{
	{RuleSyntax, "CREATE TABLE t (id bigint PRIMARY KEY,);",
		"PostgreSQL's parser rejects the statement (or goose cannot split the file): up fails on it",
		"correct the statement; goose sends each statement as it is split at a line ending in ;", false},
	{RuleStatementBegin, "CREATE FUNCTION f() … AS $$ BEGIN RETURN 1; END; $$; without -- +goose StatementBegin",
		"goose splits statements at lines ending in ;, so a $$ body with such lines is sent in pieces and up fails",
		"wrap the statement in -- +goose StatementBegin and -- +goose StatementEnd", false},
	{RuleCreateIndexConcurrently, "CREATE INDEX orders_placed_at_idx ON orders (placed_at); (orders created by an earlier migration)",
		"CREATE INDEX blocks every write to the table until the index is built",
		"CREATE INDEX CONCURRENTLY IF NOT EXISTS, alone in a migration marked -- +goose NO TRANSACTION", true},
	{RuleAddColumnNotNull, "ALTER TABLE orders ADD COLUMN region text NOT NULL;",
		"adding a NOT NULL column without a default fails as soon as the table has a row",
		"add a constant DEFAULT (instant since PostgreSQL 11), or add the column nullable, backfill it, then SET NOT NULL behind a validated CHECK", true},
	{RuleAddColumnRewrite, "ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();",
		"adding a column whose default is volatile (gen_random_uuid(), random(), clock_timestamp(), a serial's nextval()), an identity or a stored generated column rewrites the whole table under an ACCESS EXCLUSIVE lock",
		"add the column without a default (or with a constant one), then ALTER COLUMN … SET DEFAULT for new rows and backfill the old ones in batches", true},
	{RuleAlterColumnType, "ALTER TABLE orders ALTER COLUMN total TYPE numeric(16, 2);",
		"changing a column's type takes an ACCESS EXCLUSIVE lock and, unless the types are binary-compatible, rewrites the table and its indexes",
		"add a new column, backfill it in batches, switch the code over, then drop the old column in a later migration", true},
	{RuleSetNotNull, "ALTER TABLE orders ALTER COLUMN region SET NOT NULL;",
		"SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock, blocking reads and writes",
		"first ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT c in a later migration, then SET NOT NULL (PostgreSQL skips the scan) and DROP CONSTRAINT c", true},
	{RuleConstraintNotValid, "ALTER TABLE orders ADD CONSTRAINT orders_region_fk FOREIGN KEY (region) REFERENCES regions (code);",
		"adding a FOREIGN KEY or CHECK validates every row while holding a lock that blocks writes (and, for a foreign key, writes to the referenced table)",
		"ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT in a later migration (it takes a lock that lets reads and writes go on)", true},
	{RuleRenameTable, "ALTER TABLE orders RENAME TO purchase_orders;",
		"code still running against the old name fails the moment the migration commits",
		"create the new table (or a view under the new name), move the code over, and drop the old name in a later release", true},
	{RuleRenameColumn, "ALTER TABLE orders RENAME COLUMN total TO grand_total;",
		"code still running against the old column name fails the moment the migration commits",
		"add the new column, write both, backfill, move the code over, and drop the old column in a later release", true},
	{RuleDropTable, "DROP TABLE coupons;",
		"code still using the table fails, and its data is gone for good",
		"stop using the table in a release first; drop it in a later migration, with -- lint:ignore drop-table and the reason", true},
	{RuleDropColumn, "ALTER TABLE orders DROP COLUMN coupon_code;",
		"code still reading or writing the column fails (sqlc's generated queries name every column), and its data is gone",
		"stop using the column in a release first (regenerate the queries); drop it in a later migration, with -- lint:ignore drop-column and the reason", true},
	{RuleConcurrentlyInTransaction, "CREATE INDEX CONCURRENTLY orders_placed_at_idx ON orders (placed_at); in a migration without -- +goose NO TRANSACTION",
		"CONCURRENTLY cannot run inside a transaction block, which goose opens for every migration unless told otherwise: up fails",
		"mark the migration -- +goose NO TRANSACTION, one CONCURRENTLY statement per goose statement", false},
	{RuleNoTransactionIdempotent, "CREATE INDEX CONCURRENTLY orders_placed_at_idx ON orders (placed_at); in a -- +goose NO TRANSACTION migration",
		"a NO TRANSACTION migration that fails halfway keeps what it did, so the retry fails on the first statement that already ran",
		"write every statement so it can run again: IF NOT EXISTS, IF EXISTS, OR REPLACE, or a DO block that checks the catalog first", true},
	{RuleIgnore, "-- lint:ignore drop-table (no reason)",
		"an ignore comment without a reason, for an unknown rule, or that silences nothing hides the next risky change",
		"-- lint:ignore RULE REASON on the line above the statement, for a rule that fires there", false},
}

// Rules lists every rule of the linter, with a statement that triggers it.
func Rules() []Rule { return slices.Clone(rules) }

func rule(name string) (Rule, bool) {
	i := slices.IndexFunc(rules, func(r Rule) bool { return r.Name == name })
	if i < 0 {
		return Rule{}, false
	}
	return rules[i], true
}

func known(name string) bool { _, ok := rule(name); return ok }

func ignorable(name string) bool { r, ok := rule(name); return ok && r.Ignorable }

func ignorableNames() []string {
	var names []string
	for _, r := range rules {
		if r.Ignorable {
			names = append(names, r.Name)
		}
	}
	return names
}

// linter keeps what it learns across migrations, in version order.
type linter struct {
	// checks are the CHECK (col IS NOT NULL) constraints added by the
	// migrations so far, by table.constraint.
	checks map[string]*notNullCheck
}

// notNullCheck is a CHECK (col IS NOT NULL) constraint.
type notNullCheck struct {
	column    string
	validated bool   // added without NOT VALID, or validated since
	file      string // the migration that added or validated it
}

// fileState is what the linter knows inside one migration.
type fileState struct {
	file     string
	created  map[string]bool // tables created by this migration so far
	notValid map[string]bool // table.constraint added NOT VALID in this migration's transaction
	dropped  map[string]bool // table.constraint dropped with IF EXISTS in this migration
	inBody   string          // the dollar-quote tag of a $$ body goose split apart, while inside it
}

// dollarRE matches a dollar-quote delimiter: $$ or $tag$.
var dollarRE = regexp.MustCompile(`\$[A-Za-z_][A-Za-z_0-9]*\$|\$\$`)

// oddTag returns a dollar-quote tag that st opens without closing.
func oddTag(sql string) string {
	counts := map[string]int{}
	var order []string
	for _, t := range dollarRE.FindAllString(sql, -1) {
		if counts[t] == 0 {
			order = append(order, t)
		}
		counts[t]++
	}
	for _, t := range order {
		if counts[t]%2 == 1 {
			return t
		}
	}
	return ""
}

// statement parses one statement as goose sends it and runs the rules on
// each SQL statement in it.
func (l *linter) statement(fs *fileState, st *statement) []Finding {
	if fs.inBody != "" {
		// A piece of a $$ body goose split apart, reported at its first
		// piece; the piece with the closing delimiter ends it.
		if strings.Count(st.sql, fs.inBody)%2 == 1 {
			fs.inBody = ""
		}
		return nil
	}
	res, err := pg.Parse(st.sql)
	if err != nil {
		f := Finding{File: fs.file, Line: st.line, Rule: RuleSyntax}
		var pe *parser.Error
		if errors.As(err, &pe) {
			f.Line = st.line + errorLine(st.sql, pe.Cursorpos)
			f.Risk = "PostgreSQL's parser rejects this statement: " + pe.Message
		} else {
			f.Risk = "PostgreSQL's parser rejects this statement: " + err.Error()
		}
		f.Fix = "correct the statement (up would stop here)"
		if tag := oddTag(st.sql); tag != "" && strings.Contains(err.Error(), "unterminated dollar-quoted string") {
			r, _ := rule(RuleStatementBegin)
			f = Finding{File: fs.file, Line: st.line, Rule: RuleStatementBegin, Risk: r.Risk, Fix: r.Fix}
			fs.inBody = tag
		}
		return []Finding{f}
	}
	var found []Finding
	multi := len(res.GetStmts()) > 1
	for _, raw := range res.GetStmts() {
		line := st.line + lineOf(st.sql, int(raw.GetStmtLocation()))
		c := &check{l: l, fs: fs, st: st, line: line, multi: multi}
		c.node(raw.GetStmt())
		found = append(found, c.found...)
	}
	return filter(st, found)
}

// errorLine is the 0-based line, within sql, of PostgreSQL's 1-based
// character position pos (0: unknown).
func errorLine(sql string, pos int) int {
	if pos <= 0 {
		return 0
	}
	off := 0
	for i := 1; i < pos && off < len(sql); i++ {
		_, size := utf8.DecodeRuneInString(sql[off:])
		off += size
	}
	return strings.Count(sql[:off], "\n")
}

// lineOf is the 0-based line, within sql, of the first token at or after
// byte offset off (a statement's location may point at the comments and
// blanks before it).
func lineOf(sql string, off int) int {
	off = min(max(off, 0), len(sql))
	for off < len(sql) {
		rest := sql[off:]
		switch {
		case rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r' || rest[0] == ';':
			off++
		case strings.HasPrefix(rest, "--"):
			if i := strings.IndexByte(rest, '\n'); i >= 0 {
				off += i + 1
			} else {
				off = len(sql)
			}
		case strings.HasPrefix(rest, "/*"):
			if i := strings.Index(rest, "*/"); i >= 0 {
				off += i + 2
			} else {
				off = len(sql)
			}
		default:
			return strings.Count(sql[:off], "\n")
		}
	}
	return strings.Count(sql[:off], "\n")
}

// check runs the rules on one SQL statement.
type check struct {
	l     *linter
	fs    *fileState
	st    *statement
	line  int
	multi bool // one of several SQL statements goose sends as one
	found []Finding
}

// report adds a finding of rule r; detail, when given, replaces the rule's
// general risk with one naming the table or column.
func (c *check) report(name, detail string) { c.reportFix(name, detail, "") }

// reportFix is report with a fix of its own instead of the rule's.
func (c *check) reportFix(name, detail, fix string) {
	r, _ := rule(name)
	risk := r.Risk
	if detail != "" {
		risk = detail
	}
	if fix == "" {
		fix = r.Fix
	}
	c.found = append(c.found, Finding{File: c.fs.file, Line: c.line, Rule: name, Risk: risk, Fix: fix})
}

// inTx is whether the statement runs inside a transaction block: goose's,
// or the implicit one PostgreSQL opens for several statements sent at once.
func (c *check) inTx() bool { return c.st.inTx || c.multi }

// noTx is whether the statement is in a NO TRANSACTION migration.
func (c *check) noTx() bool { return !c.st.inTx }

// existing is whether rv names a table this migration did not create
// (the lock rules apply to Up only: Down undoes the migration's own work).
func (c *check) existing(rv *pg.RangeVar) bool {
	return c.st.up && rv != nil && !c.fs.created[tableKey(rv)]
}

func tableKey(rv *pg.RangeVar) string {
	schema := rv.GetSchemaname()
	if schema == "public" {
		schema = ""
	}
	return schema + "." + rv.GetRelname()
}

func tableName(rv *pg.RangeVar) string {
	if rv.GetSchemaname() != "" {
		return rv.GetSchemaname() + "." + rv.GetRelname()
	}
	return rv.GetRelname()
}

func (c *check) notIdempotent(what string) { c.notIdempotentFix(what, "") }

func (c *check) notIdempotentFix(what, fix string) {
	if c.noTx() {
		c.reportFix(RuleNoTransactionIdempotent, what+" fails when a retry of this NO TRANSACTION migration runs it again", fix)
	}
}

func (c *check) node(n *pg.Node) {
	switch {
	case n.GetCreateStmt() != nil:
		s := n.GetCreateStmt()
		c.fs.created[tableKey(s.GetRelation())] = true
		if !s.GetIfNotExists() {
			c.notIdempotent("CREATE TABLE " + tableName(s.GetRelation()) + " without IF NOT EXISTS")
		}
	case n.GetCreateTableAsStmt() != nil:
		s := n.GetCreateTableAsStmt()
		if rel := s.GetInto().GetRel(); rel != nil {
			c.fs.created[tableKey(rel)] = true
		}
		if !s.GetIfNotExists() {
			c.notIdempotent("CREATE TABLE … AS without IF NOT EXISTS")
		}
	case n.GetIndexStmt() != nil:
		c.index(n.GetIndexStmt())
	case n.GetAlterTableStmt() != nil:
		c.alterTable(n.GetAlterTableStmt())
	case n.GetRenameStmt() != nil:
		c.rename(n.GetRenameStmt())
	case n.GetDropStmt() != nil:
		c.drop(n.GetDropStmt())
	case n.GetReindexStmt() != nil:
		for _, p := range n.GetReindexStmt().GetParams() {
			if p.GetDefElem().GetDefname() == "concurrently" && c.inTx() {
				c.report(RuleConcurrentlyInTransaction, "REINDEX CONCURRENTLY cannot run inside a transaction block: up fails")
			}
		}
	case n.GetCreateSeqStmt() != nil:
		if !n.GetCreateSeqStmt().GetIfNotExists() {
			c.notIdempotent("CREATE SEQUENCE without IF NOT EXISTS")
		}
	case n.GetCreateSchemaStmt() != nil:
		if !n.GetCreateSchemaStmt().GetIfNotExists() {
			c.notIdempotent("CREATE SCHEMA without IF NOT EXISTS")
		}
	case n.GetCreateExtensionStmt() != nil:
		if !n.GetCreateExtensionStmt().GetIfNotExists() {
			c.notIdempotent("CREATE EXTENSION without IF NOT EXISTS")
		}
	case n.GetCreateFunctionStmt() != nil:
		if !n.GetCreateFunctionStmt().GetReplace() {
			c.notIdempotent("CREATE FUNCTION without OR REPLACE")
		}
	case n.GetViewStmt() != nil:
		if !n.GetViewStmt().GetReplace() {
			c.notIdempotent("CREATE VIEW without OR REPLACE")
		}
	case n.GetCreateTrigStmt() != nil:
		if !n.GetCreateTrigStmt().GetReplace() {
			c.notIdempotent("CREATE TRIGGER without OR REPLACE")
		}
	case n.GetCreateEnumStmt() != nil:
		c.notIdempotent("CREATE TYPE … AS ENUM (it has no IF NOT EXISTS: guard it in a DO block that checks pg_type)")
	case n.GetAlterEnumStmt() != nil:
		if s := n.GetAlterEnumStmt(); s.GetNewVal() != "" && s.GetOldVal() == "" && !s.GetSkipIfNewValExists() {
			c.notIdempotent("ALTER TYPE … ADD VALUE without IF NOT EXISTS")
		}
	}
}

func (c *check) index(s *pg.IndexStmt) {
	rel := s.GetRelation()
	if s.GetConcurrent() && c.inTx() {
		c.report(RuleConcurrentlyInTransaction, concurrentlyRisk(c, "CREATE INDEX CONCURRENTLY"))
	}
	if !s.GetConcurrent() && c.existing(rel) {
		c.report(RuleCreateIndexConcurrently, fmt.Sprintf("CREATE INDEX on %s, a table this migration did not create, blocks every write to it until the index is built", tableName(rel)))
	}
	if !s.GetIfNotExists() {
		fix := "CREATE INDEX IF NOT EXISTS"
		if s.GetConcurrent() {
			fix = "DROP INDEX CONCURRENTLY IF EXISTS first (a failed CONCURRENTLY build leaves an INVALID index behind, which IF NOT EXISTS alone would keep), then CREATE INDEX CONCURRENTLY IF NOT EXISTS"
		}
		c.notIdempotentFix("CREATE INDEX without IF NOT EXISTS", fix)
	}
}

func concurrentlyRisk(c *check, what string) string {
	if c.st.inTx {
		return what + " cannot run inside the transaction goose opens for this migration (it has no -- +goose NO TRANSACTION): up fails"
	}
	return what + " is sent together with other statements, which PostgreSQL runs as one transaction block: up fails"
}

func (c *check) alterTable(s *pg.AlterTableStmt) {
	if s.GetObjtype() != pg.ObjectType_OBJECT_TABLE {
		return
	}
	rel := s.GetRelation()
	table := tableName(rel)
	existing := c.existing(rel)
	for _, n := range s.GetCmds() {
		cmd := n.GetAlterTableCmd()
		switch cmd.GetSubtype() {
		case pg.AlterTableType_AT_AddColumn:
			c.addColumn(table, existing, cmd)
		case pg.AlterTableType_AT_DropColumn:
			if existing {
				c.report(RuleDropColumn, fmt.Sprintf("dropping %s.%s breaks the code still reading or writing it (sqlc's generated queries name every column), and its data is gone", table, cmd.GetName()))
			}
			if !cmd.GetMissingOk() {
				c.notIdempotent("DROP COLUMN without IF EXISTS")
			}
		case pg.AlterTableType_AT_AlterColumnType:
			if existing {
				c.report(RuleAlterColumnType, fmt.Sprintf("changing the type of %s.%s takes an ACCESS EXCLUSIVE lock and, unless the types are binary-compatible, rewrites the table and its indexes", table, cmd.GetName()))
			}
		case pg.AlterTableType_AT_SetNotNull:
			if existing && !c.validatedCheck(rel, cmd.GetName()) {
				c.report(RuleSetNotNull, fmt.Sprintf("SET NOT NULL on %s.%s scans the whole table under an ACCESS EXCLUSIVE lock: no validated CHECK (%s IS NOT NULL) from an earlier migration lets PostgreSQL skip the scan", table, cmd.GetName(), cmd.GetName()))
			}
		case pg.AlterTableType_AT_AddConstraint:
			c.addConstraint(rel, existing, cmd.GetDef().GetConstraint())
		case pg.AlterTableType_AT_ValidateConstraint:
			key := tableKey(rel) + "." + cmd.GetName()
			if c.st.inTx && c.fs.notValid[key] {
				c.report(RuleConstraintNotValid, fmt.Sprintf("VALIDATE CONSTRAINT %s runs in the transaction that added it NOT VALID, which still holds the lock that blocks writes while every row is checked", cmd.GetName()))
			}
			if ch := c.l.checks[key]; ch != nil && c.st.up {
				ch.validated, ch.file = true, c.fs.file
			}
		case pg.AlterTableType_AT_DropConstraint:
			key := tableKey(rel) + "." + cmd.GetName()
			if c.st.up {
				delete(c.l.checks, key)
			}
			if cmd.GetMissingOk() {
				c.fs.dropped[key] = true
			} else {
				c.notIdempotent("DROP CONSTRAINT without IF EXISTS")
			}
		case pg.AlterTableType_AT_DetachPartition:
			if cmd.GetDef().GetPartitionCmd().GetConcurrent() && c.inTx() {
				c.report(RuleConcurrentlyInTransaction, concurrentlyRisk(c, "DETACH PARTITION CONCURRENTLY"))
			}
		}
	}
}

func (c *check) addColumn(table string, existing bool, cmd *pg.AlterTableCmd) {
	def := cmd.GetDef().GetColumnDef()
	if !cmd.GetMissingOk() {
		c.notIdempotent("ADD COLUMN without IF NOT EXISTS")
	}
	if !existing || def == nil {
		return
	}
	notNull, hasDefault := def.GetIsNotNull(), def.GetRawDefault() != nil || def.GetIdentity() != "" || def.GetGenerated() != ""
	for _, cn := range def.GetConstraints() {
		con := cn.GetConstraint()
		switch con.GetContype() {
		case pg.ConstrType_CONSTR_NOTNULL, pg.ConstrType_CONSTR_PRIMARY:
			notNull = true
		case pg.ConstrType_CONSTR_DEFAULT, pg.ConstrType_CONSTR_IDENTITY, pg.ConstrType_CONSTR_GENERATED:
			hasDefault = true
		case pg.ConstrType_CONSTR_FOREIGN:
			c.report(RuleConstraintNotValid, fmt.Sprintf("the REFERENCES of new column %s.%s is validated at once, locking %s and %s against writes", table, def.GetColname(), table, tableName(con.GetPktable())))
		case pg.ConstrType_CONSTR_CHECK:
			c.report(RuleConstraintNotValid, fmt.Sprintf("the CHECK of new column %s.%s is validated against every row while writes to %s are blocked", table, def.GetColname(), table))
		}
	}
	if notNull && !hasDefault {
		c.report(RuleAddColumnNotNull, fmt.Sprintf("adding %s.%s NOT NULL without a default fails as soon as %s has a row", table, def.GetColname(), table))
	}
	if why := rewrites(def); why != "" {
		c.report(RuleAddColumnRewrite, fmt.Sprintf("adding %s.%s rewrites the whole of %s under an ACCESS EXCLUSIVE lock: %s", table, def.GetColname(), table, why))
	}
}

// volatile are the built-in volatile functions a column default commonly
// calls; a default calling one is computed row by row, rewriting the table.
// (A function of the project's own may be volatile too: the linter cannot
// know without the database.)
var volatile = []string{"random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
	"clock_timestamp", "timeofday", "nextval", "txid_current", "pg_current_xact_id"}

// rewrites says why adding the column def rewrites the table, or "".
func rewrites(def *pg.ColumnDef) string {
	names := def.GetTypeName().GetNames()
	if len(names) > 0 {
		switch t := names[len(names)-1].GetString_().GetSval(); t {
		case "serial", "bigserial", "smallserial", "serial2", "serial4", "serial8":
			return "a " + t + " column's nextval() default is computed for every row"
		}
	}
	if def.GetIdentity() != "" {
		return "an identity column is numbered row by row"
	}
	exprs := []*pg.Node{def.GetRawDefault()}
	for _, cn := range def.GetConstraints() {
		con := cn.GetConstraint()
		switch con.GetContype() {
		case pg.ConstrType_CONSTR_IDENTITY:
			return "an identity column is numbered row by row"
		case pg.ConstrType_CONSTR_GENERATED:
			return "a stored generated column is computed for every row"
		case pg.ConstrType_CONSTR_DEFAULT:
			exprs = append(exprs, con.GetRawExpr())
		}
	}
	for _, e := range exprs {
		if f := volatileCall(e); f != "" {
			return "its default calls " + f + "(), which is volatile, so it is computed for every row"
		}
	}
	return ""
}

// volatileCall finds a call of a [volatile] function in an expression.
func volatileCall(n *pg.Node) string {
	if n == nil {
		return ""
	}
	var next []*pg.Node
	switch {
	case n.GetFuncCall() != nil:
		f := n.GetFuncCall()
		if parts := f.GetFuncname(); len(parts) > 0 {
			if name := parts[len(parts)-1].GetString_().GetSval(); slices.Contains(volatile, name) {
				return name
			}
		}
		next = f.GetArgs()
	case n.GetTypeCast() != nil:
		next = []*pg.Node{n.GetTypeCast().GetArg()}
	case n.GetAExpr() != nil:
		next = []*pg.Node{n.GetAExpr().GetLexpr(), n.GetAExpr().GetRexpr()}
	case n.GetCoalesceExpr() != nil:
		next = n.GetCoalesceExpr().GetArgs()
	case n.GetBoolExpr() != nil:
		next = n.GetBoolExpr().GetArgs()
	case n.GetCaseExpr() != nil:
		next = []*pg.Node{n.GetCaseExpr().GetArg(), n.GetCaseExpr().GetDefresult()}
		for _, w := range n.GetCaseExpr().GetArgs() {
			next = append(next, w.GetCaseWhen().GetExpr(), w.GetCaseWhen().GetResult())
		}
	}
	for _, m := range next {
		if f := volatileCall(m); f != "" {
			return f
		}
	}
	return ""
}

func (c *check) addConstraint(rel *pg.RangeVar, existing bool, con *pg.Constraint) {
	if con == nil {
		return
	}
	key := tableKey(rel) + "." + con.GetConname()
	if col := notNullColumn(con); col != "" && con.GetConname() != "" && c.st.up {
		c.l.checks[key] = &notNullCheck{column: col, validated: !con.GetSkipValidation(), file: c.fs.file}
	}
	if con.GetSkipValidation() && c.st.inTx {
		c.fs.notValid[key] = true
	}
	if !c.fs.dropped[key] {
		c.notIdempotent("ADD CONSTRAINT (it has no IF NOT EXISTS: DROP CONSTRAINT IF EXISTS it first)")
	}
	if idx := map[pg.ConstrType]string{pg.ConstrType_CONSTR_PRIMARY: "PRIMARY KEY", pg.ConstrType_CONSTR_UNIQUE: "UNIQUE",
		pg.ConstrType_CONSTR_EXCLUSION: "EXCLUDE"}[con.GetContype()]; existing && idx != "" && con.GetIndexname() == "" {
		c.reportFix(RuleCreateIndexConcurrently,
			fmt.Sprintf("ADD CONSTRAINT … %s on %s, a table this migration did not create, builds its index under a lock that blocks reads and writes", idx, tableName(rel)),
			"CREATE UNIQUE INDEX CONCURRENTLY in a NO TRANSACTION migration, then ADD CONSTRAINT … "+idx+" USING INDEX in a later one")
	}
	kind := map[pg.ConstrType]string{pg.ConstrType_CONSTR_FOREIGN: "FOREIGN KEY", pg.ConstrType_CONSTR_CHECK: "CHECK"}[con.GetContype()]
	if existing && kind != "" && !con.GetSkipValidation() {
		name := con.GetConname()
		if name == "" {
			name = "(unnamed)"
		}
		what := fmt.Sprintf("adding %s %s to %s without NOT VALID checks every row while writes to it are blocked", kind, name, tableName(rel))
		if kind == "FOREIGN KEY" {
			what += fmt.Sprintf(" (and to %s)", tableName(con.GetPktable()))
		}
		c.report(RuleConstraintNotValid, what)
	}
}

// notNullColumn is col when con is CHECK (col IS NOT NULL).
func notNullColumn(con *pg.Constraint) string {
	if con.GetContype() != pg.ConstrType_CONSTR_CHECK {
		return ""
	}
	nt := con.GetRawExpr().GetNullTest()
	if nt == nil || nt.GetNulltesttype() != pg.NullTestType_IS_NOT_NULL {
		return ""
	}
	fields := nt.GetArg().GetColumnRef().GetFields()
	if len(fields) != 1 {
		return ""
	}
	return fields[0].GetString_().GetSval()
}

// validatedCheck reports whether an earlier migration (or this one, when it
// runs outside a transaction) left a validated CHECK (col IS NOT NULL) on
// the table, which lets SET NOT NULL skip its scan.
func (c *check) validatedCheck(rel *pg.RangeVar, col string) bool {
	prefix := tableKey(rel) + "."
	for key, ch := range c.l.checks {
		if strings.HasPrefix(key, prefix) && ch.column == col && ch.validated && (ch.file != c.fs.file || c.noTx()) {
			return true
		}
	}
	return false
}

func (c *check) rename(s *pg.RenameStmt) {
	rel := s.GetRelation()
	switch {
	case s.GetRenameType() == pg.ObjectType_OBJECT_TABLE:
		if c.existing(rel) {
			c.report(RuleRenameTable, fmt.Sprintf("renaming %s to %s breaks the code still using the old name the moment the migration commits", tableName(rel), s.GetNewname()))
		}
		if c.fs.created[tableKey(rel)] {
			c.fs.created[tableKey(&pg.RangeVar{Schemaname: rel.GetSchemaname(), Relname: s.GetNewname()})] = true
		}
		c.notIdempotent("RENAME (guard it in a DO block that checks the catalog)")
	case s.GetRenameType() == pg.ObjectType_OBJECT_COLUMN && s.GetRelationType() == pg.ObjectType_OBJECT_TABLE:
		if c.existing(rel) {
			c.report(RuleRenameColumn, fmt.Sprintf("renaming %s.%s to %s breaks the code still using the old name the moment the migration commits", tableName(rel), s.GetSubname(), s.GetNewname()))
		}
		c.notIdempotent("RENAME COLUMN (guard it in a DO block that checks the catalog)")
	}
}

func (c *check) drop(s *pg.DropStmt) {
	if s.GetConcurrent() && c.inTx() {
		c.report(RuleConcurrentlyInTransaction, concurrentlyRisk(c, "DROP INDEX CONCURRENTLY"))
	}
	if !s.GetMissingOk() {
		kind := strings.ReplaceAll(strings.TrimPrefix(s.GetRemoveType().String(), "OBJECT_"), "_", " ")
		c.notIdempotent("DROP " + kind + " without IF EXISTS")
	}
	if s.GetRemoveType() != pg.ObjectType_OBJECT_TABLE {
		return
	}
	var names []string
	for _, obj := range s.GetObjects() {
		var parts []string
		for _, item := range obj.GetList().GetItems() {
			parts = append(parts, item.GetString_().GetSval())
		}
		if len(parts) == 0 {
			continue
		}
		rv := &pg.RangeVar{Relname: parts[len(parts)-1]}
		if len(parts) > 1 {
			rv.Schemaname = parts[len(parts)-2]
		}
		if c.existing(rv) {
			names = append(names, tableName(rv))
		}
	}
	if len(names) > 0 {
		c.report(RuleDropTable, fmt.Sprintf("dropping %s breaks the code still using it, and its data is gone for good", strings.Join(names, ", ")))
	}
}
