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
	"unicode/utf16"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Bounds on the work that aliases may cause. A script without aliases stays
// far below both (it is at most MaxSize bytes); a YAML bomb, whose aliases
// expand exponentially, hits one of them after a few thousand steps of work.
const (
	maxNodes = 100_000     // nodes visited, each alias followed counting again
	maxText  = 4 * MaxSize // bytes of scalar text visited, likewise
)

var (
	topFields  = []string{"name", "description", "steps", "after"}
	stepFields = []string{"status", "headers", "body", "delay", "chance", "repeat", "fault", "smtp"}
	smtpFields = []string{"code", "message", "at"}
)

// Parse reads one script from YAML or JSON (JSON is read as YAML) and
// validates it. Unknown fields, wrong types and values out of bounds are
// refused with a *ParseError naming the line, the column and the field; so
// are inputs over MaxSize and aliases that expand beyond a fixed budget.
// The returned script has its defaults filled in (After, SMTP.At).
func Parse(data []byte) (*Script, error) {
	if len(data) > MaxSize {
		return nil, &ParseError{Msg: fmt.Sprintf("script is %d bytes, over the %d-byte limit", len(data), MaxSize)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &ParseError{Msg: "empty script: want a mapping with steps"}
	}
	if json.Valid(data) {
		data = jsonForYAML(data)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ParseError{Msg: "empty script: want a mapping with steps"}
		}
		return nil, syntaxError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(err)
	default:
		return nil, &ParseError{Line: extra.Line, Column: extra.Column, Msg: "a second YAML document; a script is one document"}
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, &ParseError{Line: doc.Line, Msg: "empty script: want a mapping with steps"}
		}
		root = doc.Content[0]
	}

	d := &decoder{marks: make(map[string]mark)}
	s, perr := d.script(root)
	if perr != nil {
		return nil, perr
	}
	s.normalize()
	if perr := s.validate(); perr != nil {
		m := d.markFor(perr.Field)
		perr.Line, perr.Column = m.line, m.col
		return nil, perr
	}
	return s, nil
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

type mark struct{ line, col int }

type decoder struct {
	marks     map[string]mark // field path -> where its value is written
	nodes     int
	textBytes int
}

// markFor returns where a field is written, or where its nearest enclosing
// field is.
func (d *decoder) markFor(field string) mark {
	for {
		if m, ok := d.marks[field]; ok {
			return m
		}
		if field == "" {
			return mark{}
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			field = ""
		} else {
			field = field[:i]
		}
	}
}

func (d *decoder) errAt(n *yaml.Node, field, format string, args ...any) *ParseError {
	return &ParseError{Line: n.Line, Column: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// visit follows aliases, charges the work budget, and records where field
// is written.
func (d *decoder) visit(n *yaml.Node, field string) (*yaml.Node, *ParseError) {
	at := mark{n.Line, n.Column}
	for hops := 0; n.Kind == yaml.AliasNode; hops++ {
		if n.Alias == nil || hops > 100 {
			return nil, d.errAt(n, field, "alias %q leads nowhere", n.Value)
		}
		n = n.Alias
	}
	d.nodes++
	if n.Kind == yaml.ScalarNode {
		d.textBytes += len(n.Value)
	}
	if d.nodes > maxNodes || d.textBytes > maxText {
		return nil, &ParseError{Line: at.line, Column: at.col, Field: field,
			Msg: fmt.Sprintf("aliases expand the script beyond %d nodes or %d bytes (a YAML bomb?)", maxNodes, maxText)}
	}
	if _, ok := d.marks[field]; !ok {
		d.marks[field] = at
	}
	return n, nil
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// fields walks a mapping: keys must be text, given once, and either one of
// known, or (when known is nil) at most max of them. fn gets each value
// after its aliases are followed.
func (d *decoder) fields(n *yaml.Node, field string, known []string, max int, fn func(key string, v *yaml.Node, vfield string) *ParseError) *ParseError {
	if n.Kind != yaml.MappingNode {
		return d.typeErr(n, field, "a mapping")
	}
	if known == nil && len(n.Content)/2 > max {
		return d.errAt(n, field, "want at most %d entries, got %d", max, len(n.Content)/2)
	}
	first := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, err := d.visit(n.Content[i], field)
		if err != nil {
			return err
		}
		if kn.Kind == yaml.ScalarNode && kn.ShortTag() == "!!merge" {
			return d.errAt(kn, field, "merge keys (<<) are not supported; use an alias (*name) for a whole value")
		}
		key, err := d.text(kn, field+" key")
		if err != nil {
			return err
		}
		sub := join(field, key)
		if line, dup := first[key]; dup {
			return d.errAt(kn, sub, "given twice (first on line %d)", line)
		}
		first[key] = kn.Line
		if known != nil && !slices.Contains(known, key) {
			return d.errAt(kn, sub, "unknown field %q%s; known fields: %s", key, suggest(key, known), strings.Join(known, ", "))
		}
		vn, err := d.visit(n.Content[i+1], sub)
		if err != nil {
			return err
		}
		if err := fn(key, vn, sub); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) script(root *yaml.Node) (*Script, *ParseError) {
	n, err := d.visit(root, "")
	if err != nil {
		return nil, err
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, d.errAt(n, "", "empty script: want a mapping with steps")
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.typeErr(n, "", "a mapping with steps")
	}
	s := &Script{}
	err = d.fields(n, "", topFields, 0, func(key string, v *yaml.Node, f string) *ParseError {
		var err *ParseError
		switch key {
		case "name":
			s.Name, err = d.text(v, f)
		case "description":
			s.Description, err = d.text(v, f)
		case "after":
			s.After, err = d.text(v, f)
			if err == nil && s.After == "" {
				err = d.errAt(v, f, "want one of last, cycle, default, got \"\"")
			}
		case "steps":
			s.Steps, err = d.steps(v, f)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (d *decoder) steps(n *yaml.Node, field string) ([]Step, *ParseError) {
	if n.Kind != yaml.SequenceNode {
		return nil, d.typeErr(n, field, "a list of steps")
	}
	if len(n.Content) == 0 {
		return nil, d.errAt(n, field, "want at least one step, got none")
	}
	if len(n.Content) > MaxSteps {
		return nil, d.errAt(n, field, "want at most %d steps, got %d", MaxSteps, len(n.Content))
	}
	steps := make([]Step, len(n.Content))
	for i, item := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		v, err := d.visit(item, f)
		if err != nil {
			return nil, err
		}
		if err := d.step(v, f, &steps[i]); err != nil {
			return nil, err
		}
	}
	return steps, nil
}

func (d *decoder) step(n *yaml.Node, field string, st *Step) *ParseError {
	return d.fields(n, field, stepFields, 0, func(key string, v *yaml.Node, f string) *ParseError {
		switch key {
		case "status":
			i, err := d.integer(v, f)
			if err != nil {
				return err
			}
			if i < 100 || i > 599 {
				return d.errAt(v, f, "%s", statusMsg(int(clamp(i))))
			}
			st.Status = int(i)
		case "repeat":
			i, err := d.integer(v, f)
			if err != nil {
				return err
			}
			if i < 1 || i > MaxRepeat {
				return d.errAt(v, f, "%s", repeatMsg(int(clamp(i))))
			}
			st.Repeat = int(i)
		case "chance":
			c, err := d.number(v, f)
			if err != nil {
				return err
			}
			st.Chance = &c
		case "delay":
			s, err := d.text(v, f)
			if err != nil {
				return err
			}
			dur, perr := parseDuration(s)
			if perr != nil {
				return d.errAt(v, f, "%v", perr)
			}
			st.Delay = Duration(dur)
		case "body":
			s, err := d.text(v, f)
			if err != nil {
				return err
			}
			st.Body = s
		case "fault":
			s, err := d.text(v, f)
			if err != nil {
				return err
			}
			if s == "" || !Fault(s).Valid() {
				return d.errAt(v, f, "%s", faultMsg(s))
			}
			st.Fault = Fault(s)
		case "headers":
			h := make(map[string]string)
			err := d.fields(v, f, nil, MaxHeaders, func(name string, hv *yaml.Node, hf string) *ParseError {
				s, err := d.text(hv, hf)
				if err != nil {
					return err
				}
				h[name] = s
				return nil
			})
			if err != nil {
				return err
			}
			st.Headers = h
		case "smtp":
			return d.smtp(v, f, st)
		}
		return nil
	})
}

func (d *decoder) smtp(n *yaml.Node, field string, st *Step) *ParseError {
	sm := &SMTPStep{}
	hasCode := false
	err := d.fields(n, field, smtpFields, 0, func(key string, v *yaml.Node, f string) *ParseError {
		var err *ParseError
		switch key {
		case "code":
			var i int64
			if i, err = d.integer(v, f); err == nil {
				if i < 200 || i > 599 {
					return d.errAt(v, f, "%s", smtpCodeMsg(int(clamp(i))))
				}
				sm.Code, hasCode = int(i), true
			}
		case "message":
			sm.Message, err = d.text(v, f)
		case "at":
			if sm.At, err = d.text(v, f); err == nil && sm.At != AtRcpt && sm.At != AtData {
				err = d.errAt(v, f, "%s", atMsg(sm.At))
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	if !hasCode {
		return d.errAt(n, field+".code", "missing; want an SMTP code in 200..599")
	}
	st.SMTP = sm
	return nil
}

// clamp keeps an out-of-range number printable as an int on any platform.
func clamp(i int64) int64 {
	const lim = 1 << 31
	switch {
	case i > lim:
		return lim
	case i < -lim:
		return -lim
	}
	return i
}

// text reads a scalar as text: strings, and numbers, booleans and dates as
// written (so that "Retry-After: 30" is the text "30"). Null, binary and
// application-specific tags are refused.
func (d *decoder) text(n *yaml.Node, field string) (string, *ParseError) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
			return n.Value, nil
		}
	}
	return "", d.typeErr(n, field, "text")
}

func (d *decoder) integer(n *yaml.Node, field string) (int64, *ParseError) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, d.typeErr(n, field, "an integer")
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		return 0, d.errAt(n, field, "%q is not an integer that fits in 64 bits", n.Value)
	}
	return v, nil
}

func (d *decoder) number(n *yaml.Node, field string) (float64, *ParseError) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		return 0, d.typeErr(n, field, "a number")
	}
	var v float64
	if err := n.Decode(&v); err != nil {
		return 0, d.errAt(n, field, "%q is not a number", n.Value)
	}
	return v, nil
}

func (d *decoder) typeErr(n *yaml.Node, field, want string) *ParseError {
	return d.errAt(n, field, "want %s, got %s", want, kindName(n))
}

// kindName describes a node for an error message.
func kindName(n *yaml.Node) string {
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

// suggest returns ` (did you mean "x"?)` for the known name closest to key
// when it is a likely typo (one edit away, or two for longer names), else "".
func suggest(key string, known []string) string {
	limit := 1
	if len(key) > 4 {
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, k := range known {
		if dist := editDistance(strings.ToLower(key), k); dist < bestDist {
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

// jsonForYAML rewrites what valid JSON may hold in its strings but the
// YAML parser does not read: the escape "\/" becomes "/"; a UTF-16
// surrogate pair "\uD83D\uDE00" becomes "\U0001F600" (a lone surrogate
// becomes U+FFFD, as encoding/json reads it); and characters that YAML does
// not allow unescaped (DEL, C1 controls, U+FFFE, U+FFFF) become \u escapes.
// data must be valid JSON; line numbers are kept.
func jsonForYAML(data []byte) []byte {
	out := make([]byte, 0, len(data))
	inString := false
	for i := 0; i < len(data); {
		c := data[i]
		if !inString {
			inString = c == '"'
			out = append(out, c)
			i++
			continue
		}
		switch {
		case c == '"':
			inString = false
			out = append(out, c)
			i++
		case c == '\\':
			// Valid JSON guarantees the bytes an escape needs are there.
			switch next := data[i+1]; next {
			case '/':
				out = append(out, '/')
				i += 2
			case 'u':
				r1 := hex4(data[i+2 : i+6])
				switch {
				case !utf16.IsSurrogate(r1):
					out = append(out, data[i:i+6]...)
					i += 6
				case i+12 <= len(data) && data[i+6] == '\\' && data[i+7] == 'u' &&
					utf16.DecodeRune(r1, hex4(data[i+8:i+12])) != utf8.RuneError:
					out = fmt.Appendf(out, `\U%08X`, utf16.DecodeRune(r1, hex4(data[i+8:i+12])))
					i += 12
				default:
					out = append(out, `\uFFFD`...)
					i += 6
				}
			default:
				out = append(out, c, next)
				i += 2
			}
		default:
			r, size := utf8.DecodeRune(data[i:])
			if yamlPrintable(r) {
				out = append(out, data[i:i+size]...)
			} else {
				out = fmt.Appendf(out, `\u%04X`, r)
			}
			i += size
		}
	}
	return out
}

// yamlPrintable reports whether YAML allows r unescaped (YAML 1.2, c-printable).
func yamlPrintable(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		return true
	case r < 0x20 || (r >= 0x7f && r <= 0x9f):
		return false
	case r == 0xFFFE || r == 0xFFFF:
		return false
	}
	return true
}

func hex4(b []byte) rune {
	v, err := strconv.ParseUint(string(b), 16, 32)
	if err != nil {
		return '\uFFFD'
	}
	return rune(v)
}
