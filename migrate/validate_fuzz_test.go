package migrate_test

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cortexerp/datalayer/migrate"
)

// FuzzValidate runs Validate on one migration file of arbitrary name and
// content (a name that is not a valid fs path becomes 00001_fuzz.sql). It
// never panics or hangs; an error names the file, and a line it cites
// exists; a SQL file it accepts is well formed (see wellFormed).
func FuzzValidate(f *testing.F) {
	f.Fuzz(func(t *testing.T, name, content string) {
		if !fs.ValidPath(name) || strings.Contains(name, "/") || name == "." {
			name = "00001_fuzz.sql"
		}
		fsys := fstest.MapFS{name: &fstest.MapFile{Data: []byte(content)}}
		done := make(chan error, 1)
		go func() { done <- migrate.Validate(fsys) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("Validate(%q) hangs", name)
		}
		migration := path.Ext(name) == ".sql" || path.Ext(name) == ".go" && !strings.HasSuffix(name, "_test.go")
		if err != nil {
			if migration && !strings.Contains(err.Error(), name) {
				t.Fatalf("the error does not name %s: %v", name, err)
			}
			lines := strings.Count(content, "\n") + 1
			for _, m := range regexp.MustCompile(regexp.QuoteMeta(name)+`:(\d+)`).FindAllStringSubmatch(err.Error(), -1) {
				if n, _ := strconv.Atoi(m[1]); n < 1 || n > lines {
					t.Fatalf("the error cites line %d of a %d-line file: %v", n, lines, err)
				}
			}
			return
		}
		if path.Ext(name) == ".sql" {
			if why := wellFormed(content); why != "" {
				t.Fatalf("Validate accepts %s, which is not well formed: %s\n%s", name, why, content)
			}
		}
	})
}

// wellFormed says what is wrong with a goose SQL migration's structure, or
// "": every line that looks like an annotation (a comment mentioning
// +goose, in any case) is one, "-- +goose <Name>" at the start of the line;
// Up comes first, before any SQL, then Down, once each; StatementBegin and
// StatementEnd pair up inside a section, never nested.
func wellFormed(content string) string {
	const (
		start = iota
		up
		upBlock
		down
		downBlock
	)
	state := start
	for i, line := range strings.Split(content, "\n") {
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		at := fmt.Sprintf("line %d: ", i+1)
		if strings.HasPrefix(trimmed, "--") && strings.Contains(strings.ToLower(trimmed), "+goose") {
			name, ok := annotationName(line)
			if !ok {
				return at + "malformed annotation " + strconv.Quote(line)
			}
			switch strings.ToLower(name) {
			case "up":
				if state != start {
					return at + "Up again"
				}
				state = up
			case "down":
				if state != up {
					return at + "Down out of place"
				}
				state = down
			case "statementbegin":
				switch state {
				case up:
					state = upBlock
				case down:
					state = downBlock
				default:
					return at + "StatementBegin out of place"
				}
			case "statementend":
				switch state {
				case upBlock:
					state = up
				case downBlock:
					state = down
				default:
					return at + "StatementEnd without StatementBegin"
				}
			case "no transaction", "envsub on", "envsub off":
			default:
				return at + "unknown annotation " + strconv.Quote(name)
			}
			continue
		}
		if state == start && trimmed != "" && !strings.HasPrefix(trimmed, "--") {
			return at + "SQL before Up"
		}
	}
	switch state {
	case start:
		return "no Up"
	case up:
		return "no Down"
	case upBlock, downBlock:
		return "StatementBegin without StatementEnd"
	}
	return ""
}

// annotationName returns Up for "-- +goose Up": the line starts with "--",
// then "+goose" (spaces or tabs before it), then a space and the name.
func annotationName(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "--")
	if !ok {
		return "", false
	}
	rest, ok = strings.CutPrefix(strings.TrimLeft(rest, " \t"), "+goose")
	if r, _ := utf8.DecodeRuneInString(rest); !ok || !unicode.IsSpace(r) {
		return "", false
	}
	return strings.TrimSpace(rest), true
}
