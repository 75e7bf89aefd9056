package run

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/callbin/callbin/scenarios"
)

// Bounds on the work that aliases may cause: a run file without aliases
// stays far below both; a YAML bomb hits one after a few thousand steps.
const (
	maxNodes = 200_000
	maxText  = 4 * MaxSize
	maxDepth = 64 // nesting of mappings and lists in task requests and bodies
)

var (
	topFields     = []string{"name", "description", "time_scale", "callback_timeout", "seed", "timeout", "parallel", "bins", "tasks", "expect"}
	binFields     = []string{"scenario"}
	taskOwnFields = []string{"type", "complete", "steps"}
	// taskAPIFields go into the creation request as they are; any other
	// field of a task is a type-specific field and goes there too.
	taskAPIFields   = []string{"callback_url", "instruction", "params", "metadata", "unique_id", "is_test"}
	taskExpFields   = []string{"task", "delivery", "callback_succeeded", "task_status", "attempts", "statuses", "within", "at_least"}
	binExpFields    = []string{"bin", "kind", "captures", "statuses", "body_contains", "subject_contains"}
	taskStatuses    = []string{"pending", "completed", "canceled", "error"}
	captureKinds    = []string{"http", "email"}
	templateFields  = []string{"url", "email", "name"}
	expectAnyFields = append(append([]string{}, taskExpFields...), binExpFields...)
)

// ParseError is a run file that was refused: where and why. It reads like
// the errors of scenarios.Parse: "line 7, column 5: tasks[0].complte:
// unknown field ...".
type ParseError struct {
	Path   string // the run file, when read from one
	Line   int    // 1-based; 0 when not tied to a line
	Column int    // 1-based; 0 when unknown
	Field  string // path of the field, such as "expect[1].statuses[2]"
	Msg    string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ", column %d", e.Column)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrInvalid.
func (e *ParseError) Unwrap() error { return ErrInvalid }

// ReadFile reads and parses a run file. Scenario file paths in it are
// relative to its folder. A file that cannot be read is an error wrapping
// ErrInvalid and the os error.
func ReadFile(path string) (*File, error) {
	data, err := readLimited(path, MaxSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	f, err := parse(data, filepath.Dir(path), readScript)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.Path = path
		}
		return nil, err
	}
	f.Path = path
	if f.Name == "" {
		f.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	return f, nil
}

// Parse reads a run file from its text. Scenario file paths in it are
// relative to dir. Unknown fields, wrong types, values out of bounds,
// unknown bins or tasks and templates that name no bin are refused with a
// *ParseError naming the line and the field.
func Parse(data []byte, dir string) (*File, error) {
	return parse(data, dir, readScript)
}

// readScript reads a scenario file named in a run file.
func readScript(path string) ([]byte, error) {
	return readLimited(path, scenarios.MaxSize)
}

// readLimited reads a regular file of at most max bytes. Devices, pipes and
// folders are refused before they are opened, so that a path such as
// /dev/zero or a FIFO neither fills memory nor blocks.
func readLimited(path string, max int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit", path, st.Size(), max)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is over the %d-byte limit", path, max)
	}
	return data, nil
}

func parse(data []byte, dir string, read func(string) ([]byte, error)) (*File, error) {
	if len(data) > MaxSize {
		return nil, &ParseError{Msg: fmt.Sprintf("run file is %d bytes, over the %d-byte limit", len(data), MaxSize)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &ParseError{Msg: "empty run file: want a mapping with bins, tasks and expect"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ParseError{Msg: "empty run file: want a mapping with bins, tasks and expect"}
		}
		return nil, syntaxError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(err)
	default:
		return nil, &ParseError{Line: extra.Line, Column: extra.Column, Msg: "a second YAML document; a run file is one document"}
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, &ParseError{Line: doc.Line, Msg: "empty run file: want a mapping with bins, tasks and expect"}
		}
		root = doc.Content[0]
	}
	d := &decoder{dir: dir, read: read}
	f, err := d.file(root)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// syntaxError turns an error of the YAML parser into a *ParseError, reading
// the line from its "yaml: line N: " prefix when there is one.
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

// templateRef is a string that holds "{{", checked once the bins are known.
type templateRef struct {
	s      string
	line   int
	column int
	field  string
}

type decoder struct {
	dir       string
	read      func(string) ([]byte, error)
	nodes     int
	textBytes int
	templates []templateRef
}

func (d *decoder) errAt(n *yaml.Node, field, format string, args ...any) *ParseError {
	return &ParseError{Line: n.Line, Column: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// visit follows aliases and charges the work budget.
func (d *decoder) visit(n *yaml.Node, field string) (*yaml.Node, *ParseError) {
	at := n
	for hops := 0; n.Kind == yaml.AliasNode; hops++ {
		if n.Alias == nil || hops > 100 {
			return nil, d.errAt(at, field, "alias %q leads nowhere", n.Value)
		}
		n = n.Alias
	}
	d.nodes++
	if n.Kind == yaml.ScalarNode {
		d.textBytes += len(n.Value)
	}
	if d.nodes > maxNodes || d.textBytes > maxText {
		return nil, d.errAt(at, field, "aliases expand the run file beyond %d nodes or %d bytes (a YAML bomb?)", maxNodes, maxText)
	}
	return n, nil
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// fields walks a mapping whose keys must be text, given once, and (when
// known is not nil) one of known. fn gets each key node and value after
// aliases are followed.
func (d *decoder) fields(n *yaml.Node, field string, known []string, fn func(key string, k, v *yaml.Node, vfield string) *ParseError) *ParseError {
	if n.Kind != yaml.MappingNode {
		return d.typeErr(n, field, "a mapping")
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
		if err := fn(key, kn, vn, sub); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) file(root *yaml.Node) (*File, *ParseError) {
	n, err := d.visit(root, "")
	if err != nil {
		return nil, err
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, d.errAt(n, "", "empty run file: want a mapping with bins, tasks and expect")
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.typeErr(n, "", "a mapping with bins, tasks and expect")
	}
	f := &File{Timeout: DefaultTimeout}
	var expectNode *yaml.Node
	err = d.fields(n, "", topFields, func(key string, _, v *yaml.Node, field string) *ParseError {
		var err *ParseError
		switch key {
		case "name":
			if f.Name, err = d.line(v, field, 200); err == nil && f.Name == "" {
				err = d.errAt(v, field, "must not be empty")
			}
		case "description":
			f.Description, err = d.text(v, field)
			if err == nil && (len(f.Description) > 2000 || !utf8.ValidString(f.Description)) {
				err = d.errAt(v, field, "want at most 2000 bytes of UTF-8 text")
			}
		case "time_scale":
			var x float64
			if x, err = d.number(v, field); err == nil {
				if !(x >= 1 && x <= MaxTimeScale) {
					return d.errAt(v, field, "want a number from 1 to %g, got %v", float64(MaxTimeScale), x)
				}
				f.TimeScale = x
			}
		case "callback_timeout":
			f.CallbackTimeout, err = d.duration(v, field, time.Millisecond, MaxCallbackTimeout)
		case "timeout":
			f.Timeout, err = d.duration(v, field, time.Millisecond, MaxTimeout)
		case "seed":
			f.Seed, err = d.integer(v, field)
		case "parallel":
			f.Parallel, err = d.boolean(v, field)
		case "bins":
			f.Bins, err = d.bins(v, field)
		case "tasks":
			f.Tasks, err = d.tasks(v, field)
		case "expect":
			expectNode = v // read once bins and tasks are known, wherever it stands
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if expectNode == nil {
		return nil, d.errAt(n, "expect", "missing; a run file checks at least one expectation")
	}
	if f.Expect, err = d.expect(expectNode, "expect", f); err != nil {
		return nil, err
	}
	if err := d.checkTemplates(f); err != nil {
		return nil, err
	}
	return f, nil
}

// ---- bins

func validBinName(name string) bool {
	if name == "" || len(name) > MaxBinName {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

func (d *decoder) bins(n *yaml.Node, field string) ([]Bin, *ParseError) {
	if n.Kind != yaml.MappingNode {
		return nil, d.typeErr(n, field, "a mapping of bin names to {scenario: ...}")
	}
	if len(n.Content)/2 > MaxBins {
		return nil, d.errAt(n, field, "want at most %d bins, got %d", MaxBins, len(n.Content)/2)
	}
	var bins []Bin
	err := d.fields(n, field, nil, func(name string, k, v *yaml.Node, bf string) *ParseError {
		if !validBinName(name) {
			return d.errAt(k, bf, "bin name %q: want 1 to %d lower-case letters, digits, '-' or '_' (not first)", name, MaxBinName)
		}
		b := Bin{Name: name, Line: k.Line}
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			bins = append(bins, b) // "hook:" alone: the default reply
			return nil
		}
		err := d.fields(v, bf, binFields, func(key string, _, sv *yaml.Node, sf string) *ParseError {
			var err *ParseError
			b.Scenario, b.Source, err = d.scenario(sv, sf)
			return err
		})
		if err != nil {
			return err
		}
		bins = append(bins, b)
		return nil
	})
	return bins, err
}

// scenario reads a bin's scenario: the name of a ready script, a file path,
// or a script written inline.
func (d *decoder) scenario(n *yaml.Node, field string) (*scenarios.Script, string, *ParseError) {
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return nil, "", nil
	case n.Kind == yaml.MappingNode:
		v, err := d.value(n, field, 0)
		if err != nil {
			return nil, "", err
		}
		js, jerr := jsonText(v)
		if jerr != nil {
			return nil, "", d.errAt(n, field, "cannot be read as a script: %v", jerr)
		}
		s, serr := scenarios.Parse(js)
		if serr != nil {
			return nil, "", d.scriptErr(n, field, serr)
		}
		return s, "inline", nil
	case n.Kind != yaml.ScalarNode:
		return nil, "", d.typeErr(n, field, "a ready scenario's name, a file path, or a script (a mapping with steps)")
	}
	ref, err := d.text(n, field)
	if err != nil {
		return nil, "", err
	}
	if isPath(ref) {
		p := ref
		if !filepath.IsAbs(p) && d.dir != "" {
			p = filepath.Join(d.dir, p)
		}
		data, rerr := d.read(p)
		if rerr != nil {
			return nil, "", d.errAt(n, field, "scenario file: %v", rerr)
		}
		s, serr := scenarios.Parse(data)
		if serr != nil {
			return nil, "", d.errAt(n, field, "scenario file %s: %v", ref, serr)
		}
		d.scriptTemplates(s, n, field)
		return s, "file " + ref, nil
	}
	s, ok := scenarios.Lookup(ref)
	if !ok {
		return nil, "", d.errAt(n, field, "no ready scenario %q%s (ready ones: %s; a file path needs a '/' or a .yaml, .yml or .json ending)",
			ref, suggest(ref, scenarios.Names()), strings.Join(scenarios.Names(), ", "))
	}
	return s, "library " + ref, nil
}

func isPath(ref string) bool {
	if strings.ContainsAny(ref, `/\`) {
		return true
	}
	switch strings.ToLower(filepath.Ext(ref)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// scriptErr places an error of scenarios.Parse on an inline script: at the
// line of the field it names, inside the run file.
func (d *decoder) scriptErr(n *yaml.Node, field string, err error) *ParseError {
	var se *scenarios.ParseError
	if !errors.As(err, &se) {
		return d.errAt(n, field, "%v", err)
	}
	at := locate(n, se.Field)
	f := field
	if se.Field != "" {
		f = field + "." + se.Field
	}
	return &ParseError{Line: at.Line, Column: at.Column, Field: f, Msg: se.Msg}
}

// locate finds the node of a field path such as "steps[1].delay" under n,
// or the nearest one that exists.
func locate(n *yaml.Node, path string) *yaml.Node {
	cur := n
	for path != "" && cur != nil {
		for hops := 0; cur.Kind == yaml.AliasNode && cur.Alias != nil && hops < 100; hops++ {
			cur = cur.Alias
		}
		var seg string
		if strings.HasPrefix(path, "[") {
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return cur
			}
			seg, path = path[:end+1], path[end+1:]
		} else {
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				seg, path = path, ""
			} else {
				seg, path = path[:end], path[end:]
			}
		}
		path = strings.TrimPrefix(path, ".")
		var next *yaml.Node
		if strings.HasPrefix(seg, "[") {
			i, err := strconv.Atoi(seg[1 : len(seg)-1])
			if err == nil && cur.Kind == yaml.SequenceNode && i >= 0 && i < len(cur.Content) {
				next = cur.Content[i]
			}
		} else if cur.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(cur.Content); i += 2 {
				if cur.Content[i].Value == seg {
					next = cur.Content[i+1]
					if path == "" && (next.Kind == yaml.MappingNode || next.Kind == yaml.SequenceNode) {
						next = cur.Content[i] // point at the key of a block value
					}
					break
				}
			}
		}
		if next == nil {
			return cur
		}
		cur = next
	}
	return cur
}

// ---- tasks

func (d *decoder) tasks(n *yaml.Node, field string) ([]Task, *ParseError) {
	if n.Kind != yaml.SequenceNode {
		return nil, d.typeErr(n, field, "a list of tasks")
	}
	if len(n.Content) > MaxTasks {
		return nil, d.errAt(n, field, "want at most %d tasks, got %d", MaxTasks, len(n.Content))
	}
	tasks := make([]Task, len(n.Content))
	for i, item := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		v, err := d.visit(item, f)
		if err != nil {
			return nil, err
		}
		if err := d.task(v, f, &tasks[i]); err != nil {
			return nil, err
		}
	}
	return tasks, nil
}

func (d *decoder) task(n *yaml.Node, field string, t *Task) *ParseError {
	t.Line = n.Line
	t.Request = map[string]any{}
	hasType := false
	var completeNode *yaml.Node
	known := append(append([]string{}, taskOwnFields...), taskAPIFields...)
	err := d.fields(n, field, nil, func(key string, k, v *yaml.Node, f string) *ParseError {
		switch key {
		case "type":
			s, err := d.text(v, f)
			if err != nil {
				return err
			}
			if !validTaskType(s) {
				return d.errAt(v, f, "want a task type such as categorization or generic, got %q", s)
			}
			t.Type, hasType = s, true
			return nil
		case "complete":
			completeNode = k
			if v.Kind != yaml.MappingNode {
				return d.typeErr(v, f, "the response, a mapping such as {category: red}")
			}
			body, err := d.value(v, f, 0)
			if err != nil {
				return err
			}
			t.Steps = append([]Step{{Action: ActionComplete, Body: body, Line: k.Line}}, t.Steps...)
			return nil
		case "steps":
			steps, err := d.steps(v, f)
			if err != nil {
				return err
			}
			t.Steps = append(t.Steps, steps...)
			return nil
		}
		if !slices.Contains(known, key) {
			// A type-specific field. One that is a near miss of a field of
			// ours is a typo that would silently change the run.
			if s := suggest(key, known); s != "" {
				return d.errAt(k, f, "unknown field %q%s; type-specific fields that look like task fields go under params", key, s)
			}
		}
		val, err := d.value(v, f, 0)
		if err != nil {
			return err
		}
		if key == "callback_url" {
			if _, ok := val.(string); !ok && val != nil {
				return d.typeErr(v, f, "text (a URL, an e-mail address or a template such as {{bins.hook.url}})")
			}
		}
		t.Request[key] = val
		return nil
	})
	if err != nil {
		return err
	}
	if !hasType {
		return d.errAt(n, field+".type", "missing; want the task type, such as categorization or generic")
	}
	if completeNode != nil && len(t.Steps) > 1 {
		return d.errAt(completeNode, field+".complete", "give either complete or steps, not both (a complete step goes in steps)")
	}
	if len(t.Steps) > MaxSteps {
		return d.errAt(n, field+".steps", "want at most %d steps, got %d", MaxSteps, len(t.Steps))
	}
	return nil
}

func validTaskType(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (d *decoder) steps(n *yaml.Node, field string) ([]Step, *ParseError) {
	if n.Kind != yaml.SequenceNode {
		return nil, d.typeErr(n, field, "a list of steps such as [{complete: {...}}, {audit: {accepted: false}}, recall]")
	}
	if len(n.Content) > MaxSteps {
		return nil, d.errAt(n, field, "want at most %d steps, got %d", MaxSteps, len(n.Content))
	}
	steps := make([]Step, 0, len(n.Content))
	for i, item := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		v, err := d.visit(item, f)
		if err != nil {
			return nil, err
		}
		st := Step{Line: v.Line}
		if v.Kind == yaml.ScalarNode {
			s, err := d.text(v, f)
			if err != nil {
				return nil, err
			}
			switch s {
			case ActionRecall, ActionCancel, ActionRetry:
				st.Action = s
			case ActionComplete, ActionAudit:
				return nil, d.errAt(v, f, "%s needs its body: {%s: {...}}", s, s)
			default:
				return nil, d.errAt(v, f, "unknown step %q%s; want one of %s", s, suggest(s, actions), strings.Join(actions, ", "))
			}
			steps = append(steps, st)
			continue
		}
		if v.Kind != yaml.MappingNode || len(v.Content) != 2 {
			return nil, d.errAt(v, f, "want one action per step, such as {complete: {category: red}}, {audit: {accepted: false}}, recall, cancel or retry")
		}
		err = d.fields(v, f, actions, func(key string, _, av *yaml.Node, af string) *ParseError {
			st.Action = key
			switch key {
			case ActionComplete:
				if av.Kind != yaml.MappingNode {
					return d.typeErr(av, af, "the response, a mapping such as {category: red}")
				}
				body, err := d.value(av, af, 0)
				if err != nil {
					return err
				}
				st.Body = body
			case ActionAudit:
				if av.Kind != yaml.MappingNode {
					return d.typeErr(av, af, "a mapping such as {accepted: false, comments: \"...\"}")
				}
				body, err := d.value(av, af, 0)
				if err != nil {
					return err
				}
				st.Body = body
			default:
				if !(av.Kind == yaml.ScalarNode && av.ShortTag() == "!!null") && !(av.Kind == yaml.MappingNode && len(av.Content) == 0) {
					return d.errAt(av, af, "%s takes nothing; write it alone, as \"- %s\"", key, key)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		steps = append(steps, st)
	}
	return steps, nil
}

// ---- expectations

func (d *decoder) expect(n *yaml.Node, field string, f *File) ([]Expectation, *ParseError) {
	if n.Kind != yaml.SequenceNode {
		return nil, d.typeErr(n, field, "a list of expectations")
	}
	if len(n.Content) == 0 {
		return nil, d.errAt(n, field, "want at least one expectation, got none")
	}
	if len(n.Content) > MaxExpect {
		return nil, d.errAt(n, field, "want at most %d expectations, got %d", MaxExpect, len(n.Content))
	}
	out := make([]Expectation, len(n.Content))
	for i, item := range n.Content {
		ef := fmt.Sprintf("%s[%d]", field, i)
		v, err := d.visit(item, ef)
		if err != nil {
			return nil, err
		}
		if err := d.expectation(v, ef, f, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (d *decoder) expectation(n *yaml.Node, field string, f *File, e *Expectation) *ParseError {
	if n.Kind != yaml.MappingNode {
		return d.typeErr(n, field, "a mapping with task: N or bin: NAME")
	}
	e.Line, e.Task = n.Line, -1
	// Which kind of expectation is it? Decided first, so that a field of
	// the other kind is named as such.
	var isTask, isBin bool
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "task":
			isTask = true
		case "bin":
			isBin = true
		}
	}
	switch {
	case isTask && isBin:
		return d.errAt(n, field, "give task or bin, not both (one expectation each)")
	case !isTask && !isBin:
		return d.errAt(n, field, "want task: N (an index into tasks) or bin: NAME")
	}
	known, kind := taskExpFields, "task"
	if isBin {
		known, kind = binExpFields, "bin"
	}
	checks := 0
	var withinNode, atLeastNode *yaml.Node
	err := d.fields(n, field, expectAnyFields, func(key string, k, v *yaml.Node, kf string) *ParseError {
		if !slices.Contains(known, key) {
			return d.errAt(k, kf, "not a field of a %s expectation; known fields: %s", kind, strings.Join(known, ", "))
		}
		var err *ParseError
		switch key {
		case "task":
			var i int64
			if i, err = d.integer(v, kf); err == nil {
				if i < 0 || i >= int64(len(f.Tasks)) {
					return d.errAt(v, kf, "no task %d: the run file has %d (counted from 0)", i, len(f.Tasks))
				}
				e.Task = int(i)
			}
		case "bin":
			var s string
			if s, err = d.text(v, kf); err == nil {
				if !slices.ContainsFunc(f.Bins, func(b Bin) bool { return b.Name == s }) {
					return d.errAt(v, kf, "no bin %q in bins%s", s, suggest(s, binNames(f)))
				}
				e.Bin = s
			}
		case "delivery":
			if e.Delivery, err = d.oneOf(v, kf, deliveryEvents); err == nil {
				checks-- // narrows the checks, checks nothing itself
			}
		case "kind":
			if e.Kind, err = d.oneOf(v, kf, captureKinds); err == nil {
				checks--
			}
		case "callback_succeeded":
			var b bool
			if b, err = d.boolean(v, kf); err == nil {
				e.CallbackSucceeded = &b
			}
		case "task_status":
			e.TaskStatus, err = d.oneOf(v, kf, taskStatuses)
		case "attempts", "captures":
			var i int64
			if i, err = d.integer(v, kf); err == nil {
				if i < 0 || i > 100_000 {
					return d.errAt(v, kf, "want 0..100000, got %d", i)
				}
				c := int(i)
				if key == "attempts" {
					e.Attempts = &c
				} else {
					e.Captures = &c
				}
			}
		case "statuses":
			names := attemptNames
			if isBin {
				names = captureNames
			}
			e.Statuses, err = d.statuses(v, kf, names)
		case "within":
			withinNode = v
			e.Within, err = d.duration(v, kf, time.Nanosecond, MaxBound)
		case "at_least":
			atLeastNode = v
			e.AtLeast, err = d.duration(v, kf, 0, MaxBound)
		case "body_contains", "subject_contains":
			var s string
			if s, err = d.text(v, kf); err == nil {
				if s == "" || len(s) > 1000 {
					return d.errAt(v, kf, "want 1 to 1000 bytes of text")
				}
				if key == "body_contains" {
					e.BodyContains = s
				} else {
					e.SubjectContains = s
				}
			}
		}
		if key != "task" && key != "bin" {
			checks++
		}
		return err
	})
	if err != nil {
		return err
	}
	if checks <= 0 {
		return d.errAt(n, field, "checks nothing; give at least one of %s", strings.Join(slices.DeleteFunc(slices.Clone(known[1:]), func(s string) bool {
			return s == "delivery" || s == "kind"
		}), ", "))
	}
	if withinNode != nil && atLeastNode != nil && e.AtLeast > e.Within {
		return d.errAt(atLeastNode, field+".at_least", "%s is more than within (%s)", e.AtLeast, e.Within)
	}
	if e.SubjectContains != "" && e.Kind == "http" {
		return d.errAt(n, field+".subject_contains", "only e-mail captures have a subject; drop kind: http or use kind: email")
	}
	return nil
}

func binNames(f *File) []string {
	names := make([]string, len(f.Bins))
	for i, b := range f.Bins {
		names[i] = b.Name
	}
	return names
}

func (d *decoder) statuses(n *yaml.Node, field string, names []string) ([]Status, *ParseError) {
	if n.Kind != yaml.SequenceNode {
		return nil, d.typeErr(n, field, "a list such as [500, 500, 200]")
	}
	if len(n.Content) > MaxStatuses {
		return nil, d.errAt(n, field, "want at most %d entries, got %d", MaxStatuses, len(n.Content))
	}
	out := make([]Status, 0, len(n.Content))
	for i, item := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		v, err := d.visit(item, f)
		if err != nil {
			return nil, err
		}
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!int" {
			c, err := d.integer(v, f)
			if err != nil {
				return nil, err
			}
			if c < 100 || c > 599 {
				return nil, d.errAt(v, f, "want an HTTP status or SMTP code in 100..599, got %d", c)
			}
			out = append(out, Status{Code: int(c)})
			continue
		}
		s, err := d.text(v, f)
		if err != nil {
			return nil, d.typeErr(v, f, "a status code or one of "+strings.Join(names, ", "))
		}
		if !slices.Contains(names, s) {
			return nil, d.errAt(v, f, "want a status code or one of %s, got %q%s", strings.Join(names, ", "), s, suggest(s, names))
		}
		out = append(out, Status{Name: s})
	}
	return out, nil
}

// ---- templates

// checkTemplates checks every {{...}} against the bins.
func (d *decoder) checkTemplates(f *File) *ParseError {
	bins := binNames(f)
	for _, r := range d.templates {
		if msg := checkTemplate(r.s, bins); msg != "" {
			return &ParseError{Line: r.line, Column: r.column, Field: r.field, Msg: msg}
		}
	}
	return nil
}

// checkTemplate returns why s holds a bad template, or "".
func checkTemplate(s string, bins []string) string {
	rest := s
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			return ""
		}
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return "\"{{\" without a closing \"}}\"; a template reads {{bins.NAME.url}}, {{bins.NAME.email}} or {{bins.NAME.name}}"
		}
		inner := strings.TrimSpace(rest[:j])
		rest = rest[j+2:]
		parts := strings.Split(inner, ".")
		if len(parts) != 3 || parts[0] != "bins" || !slices.Contains(templateFields, parts[2]) {
			return fmt.Sprintf("template {{%s}}: want {{bins.NAME.url}}, {{bins.NAME.email}} or {{bins.NAME.name}}", inner)
		}
		if !slices.Contains(bins, parts[1]) {
			return fmt.Sprintf("template {{%s}}: no bin %q in bins%s", inner, parts[1], suggest(parts[1], bins))
		}
	}
}

// scriptTemplates records the templates of a script read from a file, all
// at the line that names the file.
func (d *decoder) scriptTemplates(s *scenarios.Script, n *yaml.Node, field string) {
	add := func(v string) {
		if strings.Contains(v, "{{") {
			d.templates = append(d.templates, templateRef{s: v, line: n.Line, column: n.Column, field: field})
		}
	}
	for _, st := range s.Steps {
		add(st.Body)
		for _, v := range st.Headers {
			add(v)
		}
		if st.SMTP != nil {
			add(st.SMTP.Message)
		}
	}
}

// ---- values

// value reads any YAML value as a JSON value, recording templates.
func (d *decoder) value(n *yaml.Node, field string, depth int) (any, *ParseError) {
	if depth > maxDepth {
		return nil, d.errAt(n, field, "nested more than %d levels deep", maxDepth)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		err := d.fields(n, field, nil, func(key string, _, v *yaml.Node, f string) *ParseError {
			x, err := d.value(v, f, depth+1)
			if err != nil {
				return err
			}
			m[key] = x
			return nil
		})
		return m, err
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			f := fmt.Sprintf("%s[%d]", field, i)
			v, err := d.visit(item, f)
			if err != nil {
				return nil, err
			}
			x, err := d.value(v, f, depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, x)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			return d.boolean(n, field)
		case "!!int":
			return d.integer(n, field)
		case "!!float":
			x, err := d.number(n, field)
			if err == nil && (math.IsNaN(x) || math.IsInf(x, 0)) {
				return nil, d.errAt(n, field, "%s is not a number JSON can carry", n.Value)
			}
			return x, err
		}
		s, err := d.text(n, field)
		if err != nil {
			return nil, err
		}
		if !utf8.ValidString(s) {
			return nil, d.errAt(n, field, "not valid UTF-8")
		}
		if strings.Contains(s, "{{") {
			d.templates = append(d.templates, templateRef{s: s, line: n.Line, column: n.Column, field: field})
		}
		return s, nil
	}
	return nil, d.typeErr(n, field, "a value")
}

// text reads a scalar as text: strings, and numbers, booleans and dates as
// written. Null, binary and application-specific tags are refused.
func (d *decoder) text(n *yaml.Node, field string) (string, *ParseError) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
			return n.Value, nil
		}
	}
	return "", d.typeErr(n, field, "text")
}

// line reads one line of text of at most max bytes.
func (d *decoder) line(n *yaml.Node, field string, max int) (string, *ParseError) {
	s, err := d.text(n, field)
	if err != nil {
		return "", err
	}
	if len(s) > max || !utf8.ValidString(s) {
		return "", d.errAt(n, field, "want at most %d bytes of UTF-8 text", max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", d.errAt(n, field, "control character %U not allowed (one line of text)", r)
		}
	}
	return s, nil
}

func (d *decoder) oneOf(n *yaml.Node, field string, allowed []string) (string, *ParseError) {
	s, err := d.text(n, field)
	if err != nil {
		return "", err
	}
	if !slices.Contains(allowed, s) {
		return "", d.errAt(n, field, "want one of %s, got %q%s", strings.Join(allowed, ", "), s, suggest(s, allowed))
	}
	return s, nil
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

func (d *decoder) boolean(n *yaml.Node, field string) (bool, *ParseError) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return false, d.typeErr(n, field, "true or false")
	}
	var v bool
	if err := n.Decode(&v); err != nil {
		return false, d.errAt(n, field, "%q is not true or false", n.Value)
	}
	return v, nil
}

// duration reads a Go duration in [min, max].
func (d *decoder) duration(n *yaml.Node, field string, min, max time.Duration) (time.Duration, *ParseError) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return 0, d.typeErr(n, field, "a duration such as \"2s\" or \"25h\"")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, d.errAt(n, field, "%q is not a Go duration such as \"250ms\", \"2s\" or \"25h\"", n.Value)
	}
	if v < min {
		if min <= time.Nanosecond {
			return 0, d.errAt(n, field, "must be positive, got %s", v)
		}
		return 0, d.errAt(n, field, "want at least %s, got %s", min, v)
	}
	if v > max {
		return 0, d.errAt(n, field, "%s is over the %s limit", v, max)
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
