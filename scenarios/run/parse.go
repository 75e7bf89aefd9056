package run

import (
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
	msg := (&scenarios.ParseError{Line: e.Line, Column: e.Column, Field: e.Field, Msg: e.Msg}).Error()
	if e.Path != "" {
		return e.Path + ": " + msg
	}
	return msg
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
	d := &decoder{
		Decoder: scenarios.Decoder{
			Subject: "run file", Want: "a mapping with bins, tasks and expect",
			MaxSize: MaxSize, MaxNodes: maxNodes, MaxText: maxText,
		},
		dir: dir, read: read,
	}
	root, err := d.Document(data)
	if err != nil {
		return nil, runError(err)
	}
	f, err := d.file(root)
	if err != nil {
		return nil, runError(err)
	}
	return f, nil
}

// runError is an error of the decoder as a run file's *ParseError.
func runError(e *scenarios.ParseError) *ParseError {
	return &ParseError{Line: e.Line, Column: e.Column, Field: e.Field, Msg: e.Msg}
}

// templateRef is a string that holds "{{", checked once the bins are known.
type templateRef struct {
	s      string
	line   int
	column int
	field  string
}

type decoder struct {
	scenarios.Decoder
	dir       string
	read      func(string) ([]byte, error)
	templates []templateRef
}

func (d *decoder) file(n *yaml.Node) (*File, *scenarios.ParseError) {
	f := &File{Timeout: DefaultTimeout}
	var expectNode *yaml.Node
	err := d.Fields(n, "", topFields, func(key string, _, v *yaml.Node, field string) *scenarios.ParseError {
		var err *scenarios.ParseError
		switch key {
		case "name":
			if f.Name, err = d.Line(v, field, 200); err == nil && f.Name == "" {
				err = d.ErrAt(v, field, "must not be empty")
			}
		case "description":
			f.Description, err = d.Text(v, field)
			if err == nil && (len(f.Description) > 2000 || !utf8.ValidString(f.Description)) {
				err = d.ErrAt(v, field, "want at most 2000 bytes of UTF-8 text")
			}
		case "time_scale":
			var x float64
			if x, err = d.Number(v, field); err == nil {
				if !(x >= 1 && x <= MaxTimeScale) {
					return d.ErrAt(v, field, "want a number from 1 to %g, got %v", float64(MaxTimeScale), x)
				}
				f.TimeScale = x
			}
		case "callback_timeout":
			f.CallbackTimeout, err = d.Duration(v, field, time.Millisecond, MaxCallbackTimeout)
		case "timeout":
			f.Timeout, err = d.Duration(v, field, time.Millisecond, MaxTimeout)
		case "seed":
			f.Seed, err = d.Integer(v, field)
		case "parallel":
			f.Parallel, err = d.Boolean(v, field)
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
		return nil, d.ErrAt(n, "expect", "missing; a run file checks at least one expectation")
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

func (d *decoder) bins(n *yaml.Node, field string) ([]Bin, *scenarios.ParseError) {
	if n.Kind != yaml.MappingNode {
		return nil, d.TypeErr(n, field, "a mapping of bin names to {scenario: ...}")
	}
	if len(n.Content)/2 > MaxBins {
		return nil, d.ErrAt(n, field, "want at most %d bins, got %d", MaxBins, len(n.Content)/2)
	}
	var bins []Bin
	err := d.Fields(n, field, nil, func(name string, k, v *yaml.Node, bf string) *scenarios.ParseError {
		if !validBinName(name) {
			return d.ErrAt(k, bf, "bin name %q: want 1 to %d lower-case letters, digits, '-' or '_' (not first)", name, MaxBinName)
		}
		b := Bin{Name: name, Line: k.Line}
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			bins = append(bins, b) // "hook:" alone: the default reply
			return nil
		}
		err := d.Fields(v, bf, binFields, func(key string, _, sv *yaml.Node, sf string) *scenarios.ParseError {
			var err *scenarios.ParseError
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
func (d *decoder) scenario(n *yaml.Node, field string) (*scenarios.Script, string, *scenarios.ParseError) {
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
			return nil, "", d.ErrAt(n, field, "cannot be read as a script: %v", jerr)
		}
		s, serr := scenarios.Parse(js)
		if serr != nil {
			return nil, "", d.scriptErr(n, field, serr)
		}
		return s, "inline", nil
	case n.Kind != yaml.ScalarNode:
		return nil, "", d.TypeErr(n, field, "a ready scenario's name, a file path, or a script (a mapping with steps)")
	}
	ref, err := d.Text(n, field)
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
			return nil, "", d.ErrAt(n, field, "scenario file: %v", rerr)
		}
		s, serr := scenarios.Parse(data)
		if serr != nil {
			return nil, "", d.ErrAt(n, field, "scenario file %s: %v", ref, serr)
		}
		d.scriptTemplates(s, n, field)
		return s, "file " + ref, nil
	}
	s, ok := scenarios.Lookup(ref)
	if !ok {
		return nil, "", d.ErrAt(n, field, "no ready scenario %q%s (ready ones: %s; a file path needs a '/' or a .yaml, .yml or .json ending)",
			ref, scenarios.Suggest(ref, scenarios.Names()), strings.Join(scenarios.Names(), ", "))
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
func (d *decoder) scriptErr(n *yaml.Node, field string, err error) *scenarios.ParseError {
	var se *scenarios.ParseError
	if !errors.As(err, &se) {
		return d.ErrAt(n, field, "%v", err)
	}
	at := locate(n, se.Field)
	f := field
	if se.Field != "" {
		f = field + "." + se.Field
	}
	return &scenarios.ParseError{Line: at.Line, Column: at.Column, Field: f, Msg: se.Msg}
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

func (d *decoder) tasks(n *yaml.Node, field string) ([]Task, *scenarios.ParseError) {
	tasks := make([]Task, len(n.Content))
	err := d.Items(n, field, scenarios.List{Want: "a list of tasks", Nouns: "tasks", Max: MaxTasks},
		func(i int, v *yaml.Node, f string) *scenarios.ParseError { return d.task(v, f, &tasks[i]) })
	if err != nil {
		return nil, err
	}
	return tasks, nil
}

func (d *decoder) task(n *yaml.Node, field string, t *Task) *scenarios.ParseError {
	t.Line = n.Line
	t.Request = map[string]any{}
	hasType := false
	var completeNode *yaml.Node
	known := append(append([]string{}, taskOwnFields...), taskAPIFields...)
	err := d.Fields(n, field, nil, func(key string, k, v *yaml.Node, f string) *scenarios.ParseError {
		switch key {
		case "type":
			s, err := d.Text(v, f)
			if err != nil {
				return err
			}
			if !validTaskType(s) {
				return d.ErrAt(v, f, "want a task type such as categorization or generic, got %q", s)
			}
			t.Type, hasType = s, true
			return nil
		case "complete":
			completeNode = k
			if v.Kind != yaml.MappingNode {
				return d.TypeErr(v, f, "the response, a mapping such as {category: red}")
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
			if s := scenarios.Suggest(key, known); s != "" {
				return d.ErrAt(k, f, "unknown field %q%s; type-specific fields that look like task fields go under params", key, s)
			}
		}
		val, err := d.value(v, f, 0)
		if err != nil {
			return err
		}
		if key == "callback_url" {
			if _, ok := val.(string); !ok && val != nil {
				return d.TypeErr(v, f, "text (a URL, an e-mail address or a template such as {{bins.hook.url}})")
			}
		}
		t.Request[key] = val
		return nil
	})
	if err != nil {
		return err
	}
	if !hasType {
		return d.ErrAt(n, field+".type", "missing; want the task type, such as categorization or generic")
	}
	if completeNode != nil && len(t.Steps) > 1 {
		return d.ErrAt(completeNode, field+".complete", "give either complete or steps, not both (a complete step goes in steps)")
	}
	if len(t.Steps) > MaxSteps {
		return d.ErrAt(n, field+".steps", "want at most %d steps, got %d", MaxSteps, len(t.Steps))
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

func (d *decoder) steps(n *yaml.Node, field string) ([]Step, *scenarios.ParseError) {
	steps := make([]Step, 0, len(n.Content))
	l := scenarios.List{Want: "a list of steps such as [{complete: {...}}, {audit: {accepted: false}}, recall]", Nouns: "steps", Max: MaxSteps}
	err := d.Items(n, field, l, func(_ int, v *yaml.Node, f string) *scenarios.ParseError {
		st, err := d.step(v, f)
		steps = append(steps, st)
		return err
	})
	if err != nil {
		return nil, err
	}
	return steps, nil
}

// step reads one step of a task: an action alone, or an action with its body.
func (d *decoder) step(v *yaml.Node, f string) (Step, *scenarios.ParseError) {
	st := Step{Line: v.Line}
	if v.Kind == yaml.ScalarNode {
		s, err := d.Text(v, f)
		if err != nil {
			return st, err
		}
		switch s {
		case ActionRecall, ActionCancel, ActionRetry:
			st.Action = s
		case ActionComplete, ActionAudit:
			return st, d.ErrAt(v, f, "%s needs its body: {%s: {...}}", s, s)
		default:
			return st, d.ErrAt(v, f, "unknown step %q%s; want one of %s", s, scenarios.Suggest(s, actions), strings.Join(actions, ", "))
		}
		return st, nil
	}
	if v.Kind != yaml.MappingNode || len(v.Content) != 2 {
		return st, d.ErrAt(v, f, "want one action per step, such as {complete: {category: red}}, {audit: {accepted: false}}, recall, cancel or retry")
	}
	err := d.Fields(v, f, actions, func(key string, _, av *yaml.Node, af string) *scenarios.ParseError {
		st.Action = key
		want := "a mapping such as {accepted: false, comments: \"...\"}"
		switch key {
		case ActionComplete:
			want = "the response, a mapping such as {category: red}"
			fallthrough
		case ActionAudit:
			if av.Kind != yaml.MappingNode {
				return d.TypeErr(av, af, want)
			}
			body, err := d.value(av, af, 0)
			if err != nil {
				return err
			}
			st.Body = body
		default:
			if !(av.Kind == yaml.ScalarNode && av.ShortTag() == "!!null") && !(av.Kind == yaml.MappingNode && len(av.Content) == 0) {
				return d.ErrAt(av, af, "%s takes nothing; write it alone, as \"- %s\"", key, key)
			}
		}
		return nil
	})
	return st, err
}

// ---- expectations

func (d *decoder) expect(n *yaml.Node, field string, f *File) ([]Expectation, *scenarios.ParseError) {
	out := make([]Expectation, len(n.Content))
	err := d.Items(n, field, scenarios.List{Want: "a list of expectations", Noun: "expectation", Nouns: "expectations", Min: 1, Max: MaxExpect},
		func(i int, v *yaml.Node, ef string) *scenarios.ParseError { return d.expectation(v, ef, f, &out[i]) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (d *decoder) expectation(n *yaml.Node, field string, f *File, e *Expectation) *scenarios.ParseError {
	if n.Kind != yaml.MappingNode {
		return d.TypeErr(n, field, "a mapping with task: N or bin: NAME")
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
		return d.ErrAt(n, field, "give task or bin, not both (one expectation each)")
	case !isTask && !isBin:
		return d.ErrAt(n, field, "want task: N (an index into tasks) or bin: NAME")
	}
	known, kind := taskExpFields, "task"
	if isBin {
		known, kind = binExpFields, "bin"
	}
	checks := 0
	var withinNode, atLeastNode *yaml.Node
	err := d.Fields(n, field, expectAnyFields, func(key string, k, v *yaml.Node, kf string) *scenarios.ParseError {
		if !slices.Contains(known, key) {
			return d.ErrAt(k, kf, "not a field of a %s expectation; known fields: %s", kind, strings.Join(known, ", "))
		}
		var err *scenarios.ParseError
		switch key {
		case "task":
			var i int64
			if i, err = d.Integer(v, kf); err == nil {
				if i < 0 || i >= int64(len(f.Tasks)) {
					return d.ErrAt(v, kf, "no task %d: the run file has %d (counted from 0)", i, len(f.Tasks))
				}
				e.Task = int(i)
			}
		case "bin":
			var s string
			if s, err = d.Text(v, kf); err == nil {
				if !slices.ContainsFunc(f.Bins, func(b Bin) bool { return b.Name == s }) {
					return d.ErrAt(v, kf, "no bin %q in bins%s", s, scenarios.Suggest(s, binNames(f)))
				}
				e.Bin = s
			}
		case "delivery":
			if e.Delivery, err = d.OneOf(v, kf, deliveryEvents); err == nil {
				checks-- // narrows the checks, checks nothing itself
			}
		case "kind":
			if e.Kind, err = d.OneOf(v, kf, captureKinds); err == nil {
				checks--
			}
		case "callback_succeeded":
			var b bool
			if b, err = d.Boolean(v, kf); err == nil {
				e.CallbackSucceeded = &b
			}
		case "task_status":
			e.TaskStatus, err = d.OneOf(v, kf, taskStatuses)
		case "attempts", "captures":
			var i int64
			if i, err = d.Integer(v, kf); err == nil {
				if i < 0 || i > 100_000 {
					return d.ErrAt(v, kf, "want 0..100000, got %d", i)
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
			e.Within, err = d.Duration(v, kf, time.Nanosecond, MaxBound)
		case "at_least":
			atLeastNode = v
			e.AtLeast, err = d.Duration(v, kf, 0, MaxBound)
		case "body_contains", "subject_contains":
			var s string
			if s, err = d.Text(v, kf); err == nil {
				if s == "" || len(s) > 1000 {
					return d.ErrAt(v, kf, "want 1 to 1000 bytes of text")
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
		return d.ErrAt(n, field, "checks nothing; give at least one of %s", strings.Join(slices.DeleteFunc(slices.Clone(known[1:]), func(s string) bool {
			return s == "delivery" || s == "kind"
		}), ", "))
	}
	if withinNode != nil && atLeastNode != nil && e.AtLeast > e.Within {
		return d.ErrAt(atLeastNode, field+".at_least", "%s is more than within (%s)", e.AtLeast, e.Within)
	}
	if e.SubjectContains != "" && e.Kind == "http" {
		return d.ErrAt(n, field+".subject_contains", "only e-mail captures have a subject; drop kind: http or use kind: email")
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

func (d *decoder) statuses(n *yaml.Node, field string, names []string) ([]Status, *scenarios.ParseError) {
	out := make([]Status, 0, len(n.Content))
	err := d.Items(n, field, scenarios.List{Want: "a list such as [500, 500, 200]", Nouns: "entries", Max: MaxStatuses}, func(_ int, v *yaml.Node, f string) *scenarios.ParseError {
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!int" {
			c, err := d.Integer(v, f)
			if err != nil {
				return err
			}
			if c < 100 || c > 599 {
				return d.ErrAt(v, f, "want an HTTP status or SMTP code in 100..599, got %d", c)
			}
			out = append(out, Status{Code: int(c)})
			return nil
		}
		s, err := d.Text(v, f)
		if err != nil {
			return d.TypeErr(v, f, "a status code or one of "+strings.Join(names, ", "))
		}
		if !slices.Contains(names, s) {
			return d.ErrAt(v, f, "want a status code or one of %s, got %q%s", strings.Join(names, ", "), s, scenarios.Suggest(s, names))
		}
		out = append(out, Status{Name: s})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ---- templates

// checkTemplates checks every {{...}} against the bins.
func (d *decoder) checkTemplates(f *File) *scenarios.ParseError {
	bins := binNames(f)
	for _, r := range d.templates {
		if msg := checkTemplate(r.s, bins); msg != "" {
			return &scenarios.ParseError{Line: r.line, Column: r.column, Field: r.field, Msg: msg}
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
			return fmt.Sprintf("template {{%s}}: no bin %q in bins%s", inner, parts[1], scenarios.Suggest(parts[1], bins))
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
func (d *decoder) value(n *yaml.Node, field string, depth int) (any, *scenarios.ParseError) {
	if depth > maxDepth {
		return nil, d.ErrAt(n, field, "nested more than %d levels deep", maxDepth)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		err := d.Fields(n, field, nil, func(key string, _, v *yaml.Node, f string) *scenarios.ParseError {
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
		err := d.Items(n, field, scenarios.List{}, func(_ int, v *yaml.Node, f string) *scenarios.ParseError {
			x, err := d.value(v, f, depth+1)
			l = append(l, x)
			return err
		})
		if err != nil {
			return nil, err
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			return d.Boolean(n, field)
		case "!!int":
			return d.Integer(n, field)
		case "!!float":
			x, err := d.Number(n, field)
			if err == nil && (math.IsNaN(x) || math.IsInf(x, 0)) {
				return nil, d.ErrAt(n, field, "%s is not a number JSON can carry", n.Value)
			}
			return x, err
		}
		s, err := d.Text(n, field)
		if err != nil {
			return nil, err
		}
		if !utf8.ValidString(s) {
			return nil, d.ErrAt(n, field, "not valid UTF-8")
		}
		if strings.Contains(s, "{{") {
			d.templates = append(d.templates, templateRef{s: s, line: n.Line, column: n.Column, field: field})
		}
		return s, nil
	}
	return nil, d.TypeErr(n, field, "a value")
}
