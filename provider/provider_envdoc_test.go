package provider

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestREADMEDocumentsEveryVariable keeps the table in ../README.md (between
// <!-- env:begin --> and <!-- env:end -->) in step with the struct tags:
// every variable has a row, whose default column shows the envDefault, and
// every row is a variable the provider reads.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "<!-- env:begin -->")
	require.True(t, ok, "README.md has no <!-- env:begin --> line")
	section, _, ok = strings.Cut(section, "<!-- env:end -->")
	require.True(t, ok, "README.md has no <!-- env:end --> line")

	rows := map[string][]string{} // variable -> cells
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) < 3 || !strings.HasPrefix(strings.TrimSpace(cells[0]), "`") {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[strings.Trim(cells[0], "`")] = cells
	}

	var problems []string
	documented := map[string]bool{}
	check := func(v any, prefix string) {
		for _, f := range envParams(v, prefix) {
			name := f.Key
			documented[name] = true
			cells, ok := rows[name]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("no row for %s (%T)", name, v))
			case f.HasDefaultValue && f.DefaultValue != "" && cells[1] != "`"+f.DefaultValue+"`":
				problems = append(problems, fmt.Sprintf("default of %s is %s, want `%s`", name, cells[1], f.DefaultValue))
			case cells[2] == "":
				problems = append(problems, fmt.Sprintf("no meaning for %s", name))
			}
		}
	}
	check(&Config{}, "")
	check(&DatabaseConfig{}, "DB_<NAME>_")
	for name := range rows {
		if !documented[name] {
			problems = append(problems, fmt.Sprintf("row %s is not a variable the provider reads", name))
		}
	}
	require.Empty(t, problems, "README.md's variable table (between the env markers) is out of step with the config structs")
}
