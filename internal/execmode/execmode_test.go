package execmode

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestNamesAreTheOnesPgxParses checks every name against pgx's own parser
// of default_query_exec_mode, so the list cannot drift from pgx.
func TestNamesAreTheOnesPgxParses(t *testing.T) {
	t.Parallel()
	require.Len(t, All(), 5)
	for _, m := range All() {
		cfg, err := pgx.ParseConfig("postgres://u@h/d?default_query_exec_mode=" + m.Name)
		require.NoError(t, err, m.Name)
		require.Equal(t, m.Mode, cfg.DefaultQueryExecMode, m.Name)
		// pgx's String spells the same name with a space.
		require.Equal(t, strings.ReplaceAll(m.Name, "_", " "), m.Mode.String())

		got, ok := Parse(" " + strings.ToUpper(m.Name) + " ")
		require.True(t, ok, m.Name)
		require.Equal(t, m.Mode, got)
	}
	require.Equal(t, "cache_statement", All()[0].Name, "the default comes first")
	_, ok := Parse("turbo")
	require.False(t, ok)
	require.Equal(t, []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"}, Names())
}
