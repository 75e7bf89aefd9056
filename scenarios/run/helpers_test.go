package run

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// MustParse parses a run file that the test means to be valid.
func MustParse(tb testing.TB, text string) *File {
	tb.Helper()
	f, err := Parse([]byte(text), tb.TempDir())
	if err != nil {
		tb.Fatalf("Parse: got error %v, want none; text:\n%s", err, text)
	}
	return f
}

// MustWriteFile writes a file under dir and returns its path.
func MustWriteFile(tb testing.TB, dir, name, text string) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// exampleFiles returns the paths of the example run files.
func exampleFiles(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "examples", "run", "*.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) < 10 {
		tb.Fatalf("got %d example run files, want at least 10", len(files))
	}
	return files
}

// noRead refuses every scenario file: parsing must not reach the disk.
func noRead(path string) ([]byte, error) {
	return nil, errors.New("no files in this test")
}

// checkParseError checks err is a *ParseError wrapping ErrInvalid at line
// with field, whose message holds msg.
func checkParseError(tb testing.TB, err error, line int, field, msg string) {
	tb.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		tb.Fatalf("got error %v (%T), want a *ParseError", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		tb.Errorf("error %q does not wrap ErrInvalid", err)
	}
	if pe.Line != line {
		tb.Errorf("error %q: got line %d, want %d", err, pe.Line, line)
	}
	if pe.Field != field {
		tb.Errorf("error %q: got field %q, want %q", err, pe.Field, field)
	}
	if !strings.Contains(pe.Msg, msg) {
		tb.Errorf("error %q: got message %q, want it to hold %q", err, pe.Msg, msg)
	}
}
