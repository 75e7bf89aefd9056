package scenarios

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Decoder reads one YAML document strictly, node by node: every error is a
// *ParseError naming the line, the column and the field. It is the toolkit
// that Parse uses for scripts and that other file formats of the project
// (run files) reuse. A Decoder is for one document; it is not safe for
// concurrent use.
type Decoder struct {
	Subject string // what is read, as in "script" or "run file"; named in messages
	Want    string // what the document must be, as in "a mapping with steps"

	MaxSize  int // bytes of input, checked by Document
	MaxNodes int // nodes visited, each alias followed counting again
	MaxText  int // bytes of scalar text visited, likewise

	// JSON, when set, makes Document read valid JSON as the JSON it is
	// (rewriting the few escapes and characters YAML reads otherwise).
	JSON bool
	// Positions, when set, records where each field is written, for
	// Position.
	Positions bool

	nodes     int
	textBytes int
	marks     map[string]mark
}

type mark struct{ line, col int }

// Document reads data as exactly one YAML document and returns its root,
// which must be a mapping, with its aliases followed. Input over MaxSize,
// empty input, YAML syntax errors and a second document are refused.
func (d *Decoder) Document(data []byte) (*yaml.Node, *ParseError) {
	if len(data) > d.MaxSize {
		return nil, &ParseError{Msg: fmt.Sprintf("%s is %d bytes, over the %d-byte limit", d.Subject, len(data), d.MaxSize)}
	}
	empty := fmt.Sprintf("empty %s: want %s", d.Subject, d.Want)
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &ParseError{Msg: empty}
	}
	if d.JSON && json.Valid(data) {
		data = jsonForYAML(data)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ParseError{Msg: empty}
		}
		return nil, syntaxError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(err)
	default:
		return nil, &ParseError{Line: extra.Line, Column: extra.Column, Msg: fmt.Sprintf("a second YAML document; a %s is one document", d.Subject)}
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, &ParseError{Line: doc.Line, Msg: empty}
		}
		root = doc.Content[0]
	}
	n, err := d.Visit(root, "")
	if err != nil {
		return nil, err
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, d.ErrAt(n, "", "%s", empty)
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.TypeErr(n, "", d.Want)
	}
	return n, nil
}

// syntaxError turns an error of the YAML parser into a *ParseError. The
// parser gives no structured position, only a "yaml: line N: " prefix on
// its message, which is read here to fill Line; the message is kept whole
// if it has no such prefix. That line is the parser's own: for some errors
// it is where the enclosing block starts, or the line before it, rather
// than the line at fault.
func syntaxError(err error) *ParseError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	pe := &ParseError{Msg: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil && n > 0 {
				pe.Line, pe.Msg = n, tail
			}
		}
	}
	return pe
}

// Position returns where a field is written, or where its nearest
// enclosing field is; zeros when none was recorded (see Positions).
func (d *Decoder) Position(field string) (line, column int) {
	for {
		if m, ok := d.marks[field]; ok {
			return m.line, m.col
		}
		if field == "" {
			return 0, 0
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			field = ""
		} else {
			field = field[:i]
		}
	}
}

// ErrAt returns a *ParseError at node n.
func (d *Decoder) ErrAt(n *yaml.Node, field, format string, args ...any) *ParseError {
	return &ParseError{Line: n.Line, Column: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// TypeErr returns "want <want>, got <what n is>" at node n.
func (d *Decoder) TypeErr(n *yaml.Node, field, want string) *ParseError {
	return d.ErrAt(n, field, "want %s, got %s", want, KindName(n))
}

// Visit follows aliases, charges the work budget (MaxNodes, MaxText), and
// records where field is written.
func (d *Decoder) Visit(n *yaml.Node, field string) (*yaml.Node, *ParseError) {
	at := n
	for hops := 0; n.Kind == yaml.AliasNode; hops++ {
		if n.Alias == nil || hops > 100 {
			return nil, d.ErrAt(at, field, "alias %q leads nowhere", n.Value)
		}
		n = n.Alias
	}
	d.nodes++
	if n.Kind == yaml.ScalarNode {
		d.textBytes += len(n.Value)
	}
	if d.nodes > d.MaxNodes || d.textBytes > d.MaxText {
		return nil, d.ErrAt(at, field, "aliases expand the %s beyond %d nodes or %d bytes (a YAML bomb?)", d.Subject, d.MaxNodes, d.MaxText)
	}
	if d.Positions {
		if d.marks == nil {
			d.marks = make(map[string]mark)
		}
		if _, ok := d.marks[field]; !ok {
			d.marks[field] = mark{at.Line, at.Column}
		}
	}
	return n, nil
}

// Join returns the path of field key under field.
func Join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// Fields walks a mapping whose keys must be text, given once, and (when
// known is not nil) one of known, with a "did you mean" for a likely typo.
// Merge keys (<<) are refused. fn gets each key node and value after
// aliases are followed, with the value's field path.
func (d *Decoder) Fields(n *yaml.Node, field string, known []string, fn func(key string, k, v *yaml.Node, vfield string) *ParseError) *ParseError {
	if n.Kind != yaml.MappingNode {
		return d.TypeErr(n, field, "a mapping")
	}
	first := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, err := d.Visit(n.Content[i], field)
		if err != nil {
			return err
		}
		if kn.Kind == yaml.ScalarNode && kn.ShortTag() == "!!merge" {
			return d.ErrAt(kn, field, "merge keys (<<) are not supported; use an alias (*name) for a whole value")
		}
		key, err := d.Text(kn, field+" key")
		if err != nil {
			return err
		}
		sub := Join(field, key)
		if line, dup := first[key]; dup {
			return d.ErrAt(kn, sub, "given twice (first on line %d)", line)
		}
		first[key] = kn.Line
		if known != nil && !slices.Contains(known, key) {
			return d.ErrAt(kn, sub, "unknown field %q%s; known fields: %s", key, Suggest(key, known), strings.Join(known, ", "))
		}
		vn, err := d.Visit(n.Content[i+1], sub)
		if err != nil {
			return err
		}
		if err := fn(key, kn, vn, sub); err != nil {
			return err
		}
	}
	return nil
}

// List is what Items checks of a list.
type List struct {
	Want  string // what the value must be, for "want <Want>, got a mapping"
	Noun  string // one item, as in "step", for "want at least one step, got none"
	Nouns string // items, as in "steps", for "want at most 20 steps, got 21"
	Min   int    // fewest items
	Max   int    // most items; 0 for no bound
}

// Items walks a list: n must be a sequence of l.Min to l.Max items. fn gets
// each item after its aliases are followed, with its field path, such as
// "steps[2]".
func (d *Decoder) Items(n *yaml.Node, field string, l List, fn func(i int, v *yaml.Node, vfield string) *ParseError) *ParseError {
	if n.Kind != yaml.SequenceNode {
		return d.TypeErr(n, field, l.Want)
	}
	switch count := len(n.Content); {
	case count < l.Min && count == 0:
		return d.ErrAt(n, field, "want at least one %s, got none", l.Noun)
	case count < l.Min:
		return d.ErrAt(n, field, "want at least %d %s, got %d", l.Min, l.Nouns, count)
	case l.Max > 0 && count > l.Max:
		return d.ErrAt(n, field, "want at most %d %s, got %d", l.Max, l.Nouns, count)
	}
	for i, item := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		v, err := d.Visit(item, f)
		if err != nil {
			return err
		}
		if err := fn(i, v, f); err != nil {
			return err
		}
	}
	return nil
}

// Text reads a scalar as text: strings, and numbers, booleans and dates as
// written (so that "Retry-After: 30" is the text "30"). Null, binary and
// application-specific tags are refused.
func (d *Decoder) Text(n *yaml.Node, field string) (string, *ParseError) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
			return n.Value, nil
		}
	}
	return "", d.TypeErr(n, field, "text")
}

// Line reads one line of text of at most max bytes of UTF-8, without
// control characters.
func (d *Decoder) Line(n *yaml.Node, field string, max int) (string, *ParseError) {
	s, err := d.Text(n, field)
	if err != nil {
		return "", err
	}
	if len(s) > max || !utf8.ValidString(s) {
		return "", d.ErrAt(n, field, "want at most %d bytes of UTF-8 text", max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", d.ErrAt(n, field, "control character %U not allowed (one line of text)", r)
		}
	}
	return s, nil
}

// OneOf reads text that must be one of allowed.
func (d *Decoder) OneOf(n *yaml.Node, field string, allowed []string) (string, *ParseError) {
	s, err := d.Text(n, field)
	if err != nil {
		return "", err
	}
	if !slices.Contains(allowed, s) {
		return "", d.ErrAt(n, field, "want one of %s, got %q%s", strings.Join(allowed, ", "), s, Suggest(s, allowed))
	}
	return s, nil
}

// Integer reads an integer that fits in 64 bits.
func (d *Decoder) Integer(n *yaml.Node, field string) (int64, *ParseError) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, d.TypeErr(n, field, "an integer")
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		return 0, d.ErrAt(n, field, "%q is not an integer that fits in 64 bits", n.Value)
	}
	return v, nil
}

// Number reads an integer or a floating-point number.
func (d *Decoder) Number(n *yaml.Node, field string) (float64, *ParseError) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		return 0, d.TypeErr(n, field, "a number")
	}
	var v float64
	if err := n.Decode(&v); err != nil {
		return 0, d.ErrAt(n, field, "%q is not a number", n.Value)
	}
	return v, nil
}

// Boolean reads true or false.
func (d *Decoder) Boolean(n *yaml.Node, field string) (bool, *ParseError) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return false, d.TypeErr(n, field, "true or false")
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		return false, d.ErrAt(n, field, "%q is not true or false", n.Value)
	}
	return v, nil
}

// Duration reads a Go duration string in [min, max].
func (d *Decoder) Duration(n *yaml.Node, field string, min, max time.Duration) (time.Duration, *ParseError) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return 0, d.TypeErr(n, field, "a duration such as \"2s\" or \"25h\"")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, d.ErrAt(n, field, "%q is not a Go duration such as \"250ms\", \"2s\" or \"25h\"", n.Value)
	}
	if v < min {
		if min <= time.Nanosecond {
			return 0, d.ErrAt(n, field, "must be positive, got %s", v)
		}
		return 0, d.ErrAt(n, field, "want at least %s, got %s", min, v)
	}
	if v > max {
		return 0, d.ErrAt(n, field, "%s is over the %s limit", v, max)
	}
	return v, nil
}

// KindName describes a node for an error message, such as "a list" or
// `the string "abc"`.
func KindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return "nothing (null)"
	case "!!str":
		return fmt.Sprintf("the string %q", v)
	case "!!int":
		return "the integer " + v
	case "!!float":
		return "the number " + v
	case "!!bool":
		return "the boolean " + v
	case "!!timestamp":
		return "the timestamp " + v
	case "!!binary":
		return "binary data"
	default:
		return fmt.Sprintf("a value tagged %q", tag)
	}
}

// Suggest returns ` (did you mean "x"?)` for the known name closest to key
// when it is a likely typo (one edit away, or two for longer names, case
// ignored in key), else "". key itself is never suggested.
func Suggest(key string, known []string) string {
	limit := 1
	if len(key) > 4 {
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, k := range known {
		if dist := editDistance(strings.ToLower(key), k); dist < bestDist && k != key {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each count one.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
