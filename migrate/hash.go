package migrate

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Hash returns a hex SHA-256 digest over the names and contents of the
// migration files at the root of fsys (the *.sql and *.go files goose reads),
// in sorted order. Equal migrations give equal hashes, so it can key a
// template database migrated once (see package dbtest).
func Hash(fsys fs.FS) (string, error) {
	if fsys == nil {
		return "", fmt.Errorf("hash migrations: fsys must not be nil")
	}
	names, err := migrationFiles(fsys)
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	h := sha256.New()
	var n [8]byte
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return "", fmt.Errorf("hash migrations: %w", err)
		}
		// Length prefixes keep ("a", "bc") and ("ab", "c") apart.
		binary.BigEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		h.Write([]byte(name))
		binary.BigEndian.PutUint64(n[:], uint64(len(data)))
		h.Write(n[:])
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// migrationFiles lists, sorted, the files at the root of fsys that goose
// considers: *.sql and *.go, except *_test.go.
func migrationFiles(fsys fs.FS) ([]string, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasSuffix(name, "_test.go") {
			continue
		}
		if ext := path.Ext(name); ext == ".sql" || ext == ".go" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}
