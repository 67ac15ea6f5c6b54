package integration

// The cmd/migrate binary the tests run: shared by the migrate fault tests and
// the example's tests (usersday_test.go) and cmd/migrate -pgbouncer, so that
// make remove-example can take the example's out.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// migrateBinary builds cmd/migrate, once.
var migrateBinary = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(binDir, "migrate")
	// go test puts its own GOROOT/bin first on PATH.
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/migrate").CombinedOutput(); err != nil {
		return "", errors.New("build cmd/migrate: " + err.Error() + "\n" + string(out))
	}
	return bin, nil
})

// migrateCmd runs cmd/migrate against url and returns its output.
func migrateCmd(t *testing.T, url string, args ...string) string {
	t.Helper()
	bin, err := migrateBinary()
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "DATABASE_URL=" + url}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "migrate %v:\n%s", args, out.String())
	return out.String()
}
