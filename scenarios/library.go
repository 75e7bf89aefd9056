package scenarios

import (
	"embed"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// examples holds the ready scripts, one per file, examples/NAME.yaml, each
// with name: NAME. Only the top folder is read: files in subfolders (such as
// run files) are not scripts.
//
//go:embed examples/*.yaml
var examples embed.FS

// Lookup returns a copy of the ready script of that name, such as
// "fail-3-then-ok", and whether there is one.
func Lookup(name string) (*Script, bool) {
	data, ok := Source(name)
	if !ok {
		return nil, false
	}
	s, err := Parse(data)
	if err != nil || s.Name != name {
		return nil, false // the library tests keep every file parsing and named after itself
	}
	return s, true
}

// Source returns the text of the ready script of that name, comments
// included (for an editor to start from), and whether there is one.
func Source(name string) ([]byte, bool) {
	if !validName(name) {
		return nil, false
	}
	data, err := examples.ReadFile("examples/" + name + ".yaml")
	if err != nil {
		return nil, false
	}
	return data, true
}

// Library returns a copy of every ready script, sorted by name.
func Library() []*Script {
	var out []*Script
	for _, name := range Names() {
		if s, ok := Lookup(name); ok {
			out = append(out, s)
		}
	}
	return out
}

// Names returns the names of the ready scripts, sorted.
func Names() []string {
	files, err := fs.Glob(examples, "examples/*.yaml")
	if err != nil {
		return nil // the pattern is constant and well formed
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		names = append(names, strings.TrimSuffix(path.Base(f), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// validName reports whether name can be a ready script's name: lower-case
// letters, digits and inner dashes.
func validName(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '-' || name[len(name)-1] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
