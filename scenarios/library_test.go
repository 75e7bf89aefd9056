package scenarios

import (
	"bytes"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
)

// Each ready script: the first replies it gives to HTTP requests and to
// e-mail delivery attempts (see httpRun and smtpRun for the words).
func TestLibrary(t *testing.T) {
	tests := []struct {
		name string
		http string // first replies to HTTP
		smtp string // first replies to e-mail
	}{
		{"ok", "200 200 200", "accept accept"},
		{"fail-3-then-ok", "500 500 500 200 200", "accept accept"},
		{"always-500", "500 500 500 500", "accept"},
		{"flaky-30", "500 default default default default default default default default default 500 default", "accept"},
		{"rate-limited", "429 429 200 200", "accept"},
		{"gone-after-3", "200 200 200 410 410", "accept"},
		{"redirect", "302 302", "accept"},
		{"slow-timeout", "200+15s 200+15s", "@rcpt+15s"},
		{"reset", "reset reset", "@rcpt!reset"},
		{"close", "close close", "@rcpt!close"},
		{"hang", "hang hang", "@rcpt!hang"},
		{"garbage", "garbage garbage", "@rcpt!garbage"},
		{"slow-drip", "200!slow 200!slow", "@rcpt!slow"},
		{"greylist", "default default default", "451@rcpt 451@rcpt accept accept"},
		{"smtp-reject", "default default", "550@rcpt 550@rcpt"},
		{"smtp-421-close", "close close", "421@rcpt!close 421@rcpt!close"},
		{"smtp-data-452", "default default", "452@data accept accept"},
		{"gateway-errors", "502 503 504 200 502 503", "accept accept accept accept accept"},
		{"fail-once", "503 default default", "accept accept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := MustLookup(t, tt.name)
			if s.Name != tt.name {
				t.Errorf("name: got %q, want %q", s.Name, tt.name)
			}
			if s.Description == "" {
				t.Errorf("description: got none, want one line")
			}
			if got := httpRun(NewState(s, 1), len(strings.Fields(tt.http))); got != tt.http {
				t.Errorf("HTTP replies: got %q, want %q", got, tt.http)
			}
			if got := smtpRun(NewState(s, 1), len(strings.Fields(tt.smtp))); got != tt.smtp {
				t.Errorf("e-mail replies: got %q, want %q", got, tt.smtp)
			}
			src, ok := Source(tt.name)
			if !ok {
				t.Fatalf("Source(%q): got none, want the file", tt.name)
			}
			first, _, _ := bytes.Cut(src, []byte("\n"))
			if want := "# " + tt.name + ": "; !bytes.HasPrefix(first, []byte(want)) {
				t.Errorf("first line: got %q, want a comment starting %q", first, want)
			}
		})
	}
	// Every file is in the table above, and the library lists them all.
	files, err := fs.Glob(examples, "examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("example files: got %d, want %d (one table line each)", len(files), len(tests))
	}
	var names []string
	for _, s := range Library() {
		names = append(names, s.Name)
	}
	if !slices.IsSorted(names) {
		t.Errorf("Library(): got %v, want sorted by name", names)
	}
	if !slices.Equal(names, Names()) || len(names) != len(files) {
		t.Errorf("Library() names: got %v, want %v", names, Names())
	}
	for _, tt := range tests {
		if !slices.Contains(names, tt.name) {
			t.Errorf("Library(): %q missing", tt.name)
		}
	}
}

func TestLookupUnknown(t *testing.T) {
	for _, name := range []string{"", "nope", "../parse", "OK", "ok.yaml", "examples/ok", "-ok", " ok"} {
		if s, ok := Lookup(name); ok || s != nil {
			t.Errorf("Lookup(%q): got %v, %v, want nil, false", name, s, ok)
		}
		if _, ok := Source(name); ok {
			t.Errorf("Source(%q): got a file, want none", name)
		}
	}
}

func TestLookupGivesCopies(t *testing.T) {
	a := MustLookup(t, "rate-limited")
	a.Steps[0].Status = 200
	a.Steps[0].Headers["Retry-After"] = "0"
	b := MustLookup(t, "rate-limited")
	if b.Steps[0].Status != 429 || b.Steps[0].Headers["Retry-After"] != "30" {
		t.Errorf("after changing one copy: got %d %v, want 429 Retry-After 30", b.Steps[0].Status, b.Steps[0].Headers)
	}
}

// examples/README.md lists every ready script with one line.
func TestLibraryREADME(t *testing.T) {
	readme, err := os.ReadFile("examples/README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(readme), "\n")
	for _, name := range Names() {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "- `"+name+"`: ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("README lines for %q: got %d, want 1", name, n)
		}
	}
}
