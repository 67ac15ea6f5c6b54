package integration

// The cmd/migrate binary the tests run: shared by the migrate fault tests and
// the example's tests (usersday_test.go), so that make remove-example can
// take the latter out.

import (
	"errors"
	"os/exec"
	"path/filepath"
	"sync"
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
