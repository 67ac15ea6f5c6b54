//go:build migratelint

package lint

import (
	"fmt"
	"regexp"
	"strings"
)

// ignore is one "-- lint:ignore RULE REASON" comment.
type ignore struct {
	line     int // 1-based
	rule     string
	reason   string
	attached bool // on a statement's lines or in the comment block just above it
	used     bool // it silenced a finding
}

// ignoreRE finds an ignore comment anywhere on a line: alone above a
// statement, or at the end of one of its lines.
var ignoreRE = regexp.MustCompile(`--\s*lint:ignore\b(.*)$`)

// parseIgnores reads every ignore comment of a file. A comment that names no
// rule, an unknown rule or one that cannot be silenced, or gives no reason,
// is a finding at once; the others wait for the statement they silence.
func parseIgnores(file string, lines []string) ([]*ignore, []Finding) {
	var igs []*ignore
	var findings []Finding
	bad := func(line int, risk string) {
		findings = append(findings, Finding{File: file, Line: line, Rule: RuleIgnore, Risk: risk,
			Fix: "write -- lint:ignore RULE REASON (one rule, then why it is safe here) on the line above the statement"})
	}
	for i, l := range lines {
		m := ignoreRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		fields := strings.Fields(m[1])
		switch {
		case len(fields) == 0:
			bad(i+1, "the ignore comment names no rule")
			continue
		case !known(fields[0]):
			bad(i+1, fmt.Sprintf("the ignore comment names an unknown rule %q (rules: %s)", fields[0], strings.Join(ignorableNames(), ", ")))
			continue
		case !ignorable(fields[0]):
			bad(i+1, fmt.Sprintf("rule %s cannot be silenced: up would fail on this statement", fields[0]))
			continue
		case len(fields) == 1:
			bad(i+1, fmt.Sprintf("the ignore comment for %s gives no reason: say why the statement is safe here", fields[0]))
			// kept, so the finding it meant to silence is reported too
		}
		igs = append(igs, &ignore{line: i + 1, rule: fields[0], reason: strings.Join(fields[1:], " ")})
	}
	return igs, findings
}

// attach gives each statement the ignore comments on its lines and in the
// comment block just above it.
func attach(sts []*statement, igs []*ignore) {
	for _, ig := range igs {
		for _, st := range sts {
			if ig.line >= st.above && ig.line <= st.endLine {
				st.ignores = append(st.ignores, ig)
				ig.attached = true
				break
			}
		}
	}
}

// unusedIgnores reports the ignore comments that silenced nothing: not next
// to a statement, or for a rule that did not fire there (a stale comment
// would silently cover the next risky change to that statement).
func unusedIgnores(file string, igs []*ignore) []Finding {
	var out []Finding
	for _, ig := range igs {
		switch {
		case ig.reason == "" || ig.used:
		case !ig.attached:
			out = append(out, Finding{File: file, Line: ig.line, Rule: RuleIgnore,
				Risk: fmt.Sprintf("the ignore comment for %s is not on or just above a statement", ig.rule),
				Fix:  "put it on the line above the statement it silences, with no blank line between"})
		default:
			out = append(out, Finding{File: file, Line: ig.line, Rule: RuleIgnore,
				Risk: fmt.Sprintf("the ignore comment for %s silences nothing: the rule does not fire on this statement", ig.rule),
				Fix:  "remove the comment"})
		}
	}
	return out
}
