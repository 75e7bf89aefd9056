package run

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseExamples(t *testing.T) {
	for _, path := range exampleFiles(t) {
		f, err := ReadFile(path)
		if err != nil {
			t.Errorf("%s: got error %v, want none", path, err)
			continue
		}
		if f.Name == "" || f.Path != path || len(f.Expect) == 0 {
			t.Errorf("%s: got name %q path %q and %d expectations, want a name, the path and some", path, f.Name, f.Path, len(f.Expect))
		}
		if f.Timeout > 40*time.Second {
			t.Errorf("%s: got timeout %s, want at most 40s (each example runs in the test suite)", path, f.Timeout)
		}
	}
}

const fullFile = `
name: full
description: every field
time_scale: 3600
callback_timeout: 300ms
seed: -42
timeout: 20s
parallel: true
bins:
  hook: {scenario: fail-3-then-ok}
  plain:
  inline:
    scenario:
      steps:
        - status: 302
          headers: {Location: "{{bins.plain.url}}/next"}
        - {status: 200, delay: 10ms}
      after: cycle
tasks:
  - type: categorization
    callback_url: "{{bins.hook.url}}"
    params: {attachment_type: text, attachment: "a red apple", categories: [red, green]}
    metadata: {n: 1, ratio: 0.5, ok: true, none: ~}
    complete: {category: red}
  - type: generic
    callback_url: "mailto:{{bins.plain.email}}"
    extra_field: 7
    steps:
      - complete: {x: 1}
      - audit: {accepted: false, comments: "no"}
      - recall
      - {cancel: }
      - retry
expect:
  - task: 0
    callback_succeeded: true
    task_status: completed
    attempts: 4
    statuses: [500, timeout, 200]
    within: 2m
    at_least: 1s
  - {task: 1, delivery: audit, attempts: 1}
  - bin: inline
    kind: email
    captures: 2
    statuses: [hang, 451]
    body_contains: red
    subject_contains: callback
`

func TestParse(t *testing.T) {
	f := MustParse(t, fullFile)
	if f.Name != "full" || f.Description != "every field" || f.TimeScale != 3600 || f.CallbackTimeout != 300*time.Millisecond ||
		f.Seed != -42 || f.Timeout != 20*time.Second || !f.Parallel {
		t.Errorf("got name %q description %q time_scale %v callback_timeout %s seed %d timeout %s parallel %t, want the values written",
			f.Name, f.Description, f.TimeScale, f.CallbackTimeout, f.Seed, f.Timeout, f.Parallel)
	}
	if len(f.Bins) != 3 {
		t.Fatalf("got %d bins, want 3", len(f.Bins))
	}
	for i, want := range []struct{ name, source string }{{"hook", "library fail-3-then-ok"}, {"plain", ""}, {"inline", "inline"}} {
		if b := f.Bins[i]; b.Name != want.name || b.Source != want.source {
			t.Errorf("bin %d: got %q from %q, want %q from %q", i, b.Name, b.Source, want.name, want.source)
		}
	}
	if f.Bins[1].Scenario != nil {
		t.Errorf("bin plain: got a scenario, want none")
	}
	in := f.Bins[2].Scenario
	if in == nil || len(in.Steps) != 2 || in.Steps[0].Status != 302 || in.Steps[0].Headers["Location"] != "{{bins.plain.url}}/next" ||
		in.After != "cycle" || time.Duration(in.Steps[1].Delay) != 10*time.Millisecond {
		t.Errorf("inline scenario: got %+v, want the script written", in)
	}
	if f.Bins[0].Scenario == nil || len(f.Bins[0].Scenario.Steps) != 2 {
		t.Errorf("library scenario: got %+v, want fail-3-then-ok", f.Bins[0].Scenario)
	}

	if len(f.Tasks) != 2 {
		t.Fatalf("got %d tasks, want 2", len(f.Tasks))
	}
	t0 := f.Tasks[0]
	wantReq := map[string]any{
		"callback_url": "{{bins.hook.url}}",
		"params":       map[string]any{"attachment_type": "text", "attachment": "a red apple", "categories": []any{"red", "green"}},
		"metadata":     map[string]any{"n": int64(1), "ratio": 0.5, "ok": true, "none": nil},
	}
	if t0.Type != "categorization" || !reflect.DeepEqual(t0.Request, wantReq) {
		t.Errorf("task 0: got %q %#v, want categorization %#v", t0.Type, t0.Request, wantReq)
	}
	if len(t0.Steps) != 1 || t0.Steps[0].Action != ActionComplete || !reflect.DeepEqual(t0.Steps[0].Body, map[string]any{"category": "red"}) {
		t.Errorf("task 0 steps: got %+v, want one complete {category: red}", t0.Steps)
	}
	var actionsGot []string
	for _, s := range f.Tasks[1].Steps {
		actionsGot = append(actionsGot, s.Action)
	}
	if want := []string{"complete", "audit", "recall", "cancel", "retry"}; !reflect.DeepEqual(actionsGot, want) {
		t.Errorf("task 1 steps: got %v, want %v", actionsGot, want)
	}
	if f.Tasks[1].Request["extra_field"] != int64(7) {
		t.Errorf("task 1: got extra_field %#v, want 7 passed through as a type-specific field", f.Tasks[1].Request["extra_field"])
	}

	if len(f.Expect) != 3 {
		t.Fatalf("got %d expectations, want 3", len(f.Expect))
	}
	e0 := f.Expect[0]
	if e0.Task != 0 || e0.IsBin() || e0.CallbackSucceeded == nil || !*e0.CallbackSucceeded || e0.TaskStatus != "completed" ||
		e0.Attempts == nil || *e0.Attempts != 4 || e0.Within != 2*time.Minute || e0.AtLeast != time.Second ||
		!reflect.DeepEqual(e0.Statuses, []Status{{Code: 500}, {Name: "timeout"}, {Code: 200}}) {
		t.Errorf("expect[0]: got %+v, want the values written", e0)
	}
	if e1 := f.Expect[1]; e1.Task != 1 || e1.Delivery != "audit" || e1.Title() != "task 1 (audit)" {
		t.Errorf("expect[1]: got task %d delivery %q title %q, want 1, audit, \"task 1 (audit)\"", e1.Task, e1.Delivery, e1.Title())
	}
	e2 := f.Expect[2]
	if !e2.IsBin() || e2.Task != -1 || e2.Bin != "inline" || e2.Kind != "email" || e2.Captures == nil || *e2.Captures != 2 ||
		!reflect.DeepEqual(e2.Statuses, []Status{{Name: "hang"}, {Code: 451}}) || e2.BodyContains != "red" || e2.SubjectContains != "callback" {
		t.Errorf("expect[2]: got %+v, want the values written", e2)
	}
	if e2.Line != 43 {
		t.Errorf("expect[2]: got line %d, want 43", e2.Line)
	}
	if !f.UsesEmail() {
		t.Errorf("UsesEmail: got false, want true (a mailto: callback and an e-mail expectation)")
	}
	if f.Timeout != 20*time.Second {
		t.Errorf("timeout: got %s, want 20s", f.Timeout)
	}
}

func TestParseDefaults(t *testing.T) {
	f := MustParse(t, "bins: {hook: }\ntasks: [{type: generic, callback_url: '{{bins.hook.url}}', complete: {}}]\nexpect: [{task: 0, attempts: 1}]\n")
	if f.Timeout != DefaultTimeout || f.TimeScale != 0 || f.CallbackTimeout != 0 || f.Seed != 0 || f.Parallel || f.Name != "" {
		t.Errorf("got timeout %s time_scale %v callback_timeout %s seed %d parallel %t name %q, want the defaults",
			f.Timeout, f.TimeScale, f.CallbackTimeout, f.Seed, f.Parallel, f.Name)
	}
	if f.UsesEmail() {
		t.Errorf("UsesEmail: got true, want false")
	}
}

func TestParseErrors(t *testing.T) {
	base := "bins:\n  hook: {scenario: ok}\ntasks:\n  - {type: generic, callback_url: '{{bins.hook.url}}', complete: {}}\n"
	for _, tt := range []struct {
		name  string
		text  string
		line  int
		field string
		msg   string
	}{
		{"empty", "", 0, "", "empty run file"},
		{"null", "~\n", 1, "", "empty run file"},
		{"list", "- a\n", 1, "", "want a mapping with bins, tasks and expect, got a list"},
		{"syntax", "bins: [\n", 1, "", "did not find expected node content"},
		{"two documents", base + "expect: [{task: 0, attempts: 1}]\n---\nname: x\n", 6, "", "a second YAML document"},
		{"unknown field", "timeot: 5s\n" + base, 1, "timeot", `unknown field "timeot" (did you mean "timeout"?)`},
		{"duplicate", "name: a\nname: b\n", 2, "name", "given twice (first on line 1)"},
		{"merge key", "<<: {name: x}\n", 1, "", "merge keys"},
		{"missing expect", base, 1, "expect", "missing"},
		{"empty expect", base + "expect: []\n", 5, "expect", "want at least one expectation"},
		{"name empty", "name: ''\n", 1, "name", "must not be empty"},
		{"name control", "name: \"a\\tb\"\n", 1, "name", "control character"},
		{"time_scale text", "time_scale: fast\n", 1, "time_scale", `want a number, got the string "fast"`},
		{"time_scale zero", "time_scale: 0\n", 1, "time_scale", "want a number from 1 to"},
		{"time_scale huge", "time_scale: 1e12\n", 1, "time_scale", "want a number from 1 to"},
		{"timeout negative", "timeout: -1s\n", 1, "timeout", "want at least 1ms, got -1s"},
		{"timeout huge", "timeout: 2h\n", 1, "timeout", "over the 1h0m0s limit"},
		{"timeout not a duration", "timeout: soon\n", 1, "timeout", "not a Go duration"},
		{"callback_timeout int", "callback_timeout: 10\n", 1, "callback_timeout", "want a duration"},
		{"seed float", "seed: 1.5\n", 1, "seed", "want an integer"},
		{"seed huge", "seed: 99999999999999999999\n", 1, "seed", "want an integer, got the number"},
		{"parallel text", "parallel: yes\n", 1, "parallel", "want true or false"},
		{"bins list", "bins: [hook]\n", 1, "bins", "want a mapping of bin names"},
		{"bin name", "bins:\n  Hook!: {}\n", 2, "bins.Hook!", "bin name \"Hook!\""},
		{"bin name long", "bins:\n  " + strings.Repeat("a", 33) + ": {}\n", 2, "bins." + strings.Repeat("a", 33), "want 1 to 32"},
		{"bin unknown field", "bins:\n  hook: {scenari: ok}\n", 2, "bins.hook.scenari", `(did you mean "scenario"?)`},
		{"no such ready scenario", "bins:\n  hook: {scenario: fail-3-then-okk}\n", 2, "bins.hook.scenario", `no ready scenario "fail-3-then-okk" (did you mean "fail-3-then-ok"?)`},
		{"scenario list", "bins:\n  hook: {scenario: [a]}\n", 2, "bins.hook.scenario", "want a ready scenario's name, a file path, or a script"},
		{"scenario file missing", "bins:\n  hook: {scenario: ./nope.yaml}\n", 2, "bins.hook.scenario", "scenario file"},
		{"inline delay too long", "bins:\n  hook:\n    scenario:\n      steps:\n        - status: 200\n          delay: 20m\n", 6, "bins.hook.scenario.steps[0].delay", "over the 10m0s limit"},
		{"inline negative delay", "bins:\n  hook:\n    scenario:\n      steps: [{delay: -1s}]\n", 4, "bins.hook.scenario.steps[0].delay", "must not be negative"},
		{"inline repeat 0", "bins:\n  hook:\n    scenario:\n      steps:\n        - {status: 500, repeat: 0}\n", 5, "bins.hook.scenario.steps[0].repeat", "want 1..1000000, got 0"},
		{"inline no steps", "bins:\n  hook:\n    scenario: {steps: []}\n", 3, "bins.hook.scenario.steps", "want at least one step"},
		{"inline unknown field", "bins:\n  hook:\n    scenario:\n      steps:\n        - stauts: 500\n", 5, "bins.hook.scenario.steps[0].stauts", `did you mean "status"?`},
		{"inline bad fault", "bins:\n  hook:\n    scenario:\n      steps:\n        - fault: explode\n", 5, "bins.hook.scenario.steps[0].fault", "want one of reset, close, hang, garbage, slow"},
		{"tasks mapping", "tasks: {type: generic}\n", 1, "tasks", "want a list of tasks"},
		{"task without type", "tasks:\n  - {complete: {}}\n", 2, "tasks[0].type", "missing"},
		{"task type bad", "tasks:\n  - {type: 'Bad Type'}\n", 2, "tasks[0].type", "want a task type"},
		{"task typo", "tasks:\n  - type: generic\n    complte: {a: 1}\n", 3, "tasks[0].complte", `did you mean "complete"?`},
		{"task typo of an API field", "tasks:\n  - type: generic\n    callback_ur: x\n", 3, "tasks[0].callback_ur", `did you mean "callback_url"?`},
		{"callback_url list", "tasks:\n  - type: generic\n    callback_url: [a]\n", 3, "tasks[0].callback_url", "want text"},
		{"complete not a mapping", "tasks:\n  - type: generic\n    complete: red\n", 3, "tasks[0].complete", "want the response, a mapping"},
		{"complete and steps", "tasks:\n  - type: generic\n    complete: {a: 1}\n    steps: [recall]\n", 3, "tasks[0].complete", "either complete or steps"},
		{"unknown step", "tasks:\n  - type: generic\n    steps: [finish]\n", 3, "tasks[0].steps[0]", `unknown step "finish"`},
		{"audit without body", "tasks:\n  - type: generic\n    steps: [audit]\n", 3, "tasks[0].steps[0]", "audit needs its body"},
		{"recall with a body", "tasks:\n  - type: generic\n    steps: [{recall: {now: true}}]\n", 3, "tasks[0].steps[0].recall", "recall takes nothing"},
		{"two actions in a step", "tasks:\n  - type: generic\n    steps: [{recall: , cancel: }]\n", 3, "tasks[0].steps[0]", "one action per step"},
		{"step typo", "tasks:\n  - type: generic\n    steps: [{complet: {}}]\n", 3, "tasks[0].steps[0].complet", `did you mean "complete"?`},
		{"NaN in params", "tasks:\n  - type: generic\n    params: {x: .nan}\n", 3, "tasks[0].params.x", "not a number JSON can carry"},
		{"binary in params", "tasks:\n  - type: generic\n    params: {x: !!binary aGVsbG8=}\n", 3, "tasks[0].params.x", "want text, got binary data"},
		{"template unknown bin", base + "  - {type: generic, callback_url: '{{bins.hok.url}}'}\nexpect: [{task: 0, attempts: 1}]\n", 5, "tasks[1].callback_url", `no bin "hok" in bins (did you mean "hook"?)`},
		{"template bad field", base + "  - {type: generic, callback_url: '{{bins.hook.address}}'}\nexpect: [{task: 0, attempts: 1}]\n", 5, "tasks[1].callback_url", "want {{bins.NAME.url}}"},
		{"template unclosed", base + "  - {type: generic, params: {x: 'a {{bins.hook.url'}}\nexpect: [{task: 0, attempts: 1}]\n", 5, "tasks[1].params.x", "without a closing"},
		{"template in inline script", "bins:\n  hook:\n    scenario:\n      steps:\n        - {status: 302, headers: {Location: '{{bins.other.url}}'}}\nexpect: [{bin: hook, captures: 1}]\n", 5, "bins.hook.scenario.steps[0].headers.Location", `no bin "other"`},
		{"expect task out of range", base + "expect:\n  - {task: 1, attempts: 1}\n", 6, "expect[0].task", "no task 1: the run file has 1"},
		{"expect negative task", base + "expect:\n  - {task: -1, attempts: 1}\n", 6, "expect[0].task", "no task -1"},
		{"expect unknown bin", base + "expect:\n  - {bin: hok, captures: 1}\n", 6, "expect[0].bin", `no bin "hok" in bins (did you mean "hook"?)`},
		{"expect both", base + "expect:\n  - {task: 0, bin: hook, captures: 1}\n", 6, "expect[0]", "give task or bin, not both"},
		{"expect neither", base + "expect:\n  - {attempts: 1}\n", 6, "expect[0]", "want task: N"},
		{"expect checks nothing", base + "expect:\n  - {task: 0}\n", 6, "expect[0]", "checks nothing"},
		{"expect only narrows", base + "expect:\n  - {task: 0, delivery: audit}\n", 6, "expect[0]", "checks nothing"},
		{"expect bin field on a task", base + "expect:\n  - {task: 0, captures: 1}\n", 6, "expect[0].captures", "not a field of a task expectation"},
		{"expect task field on a bin", base + "expect:\n  - {bin: hook, attempts: 1}\n", 6, "expect[0].attempts", "not a field of a bin expectation"},
		{"expect unknown field", base + "expect:\n  - task: 0\n    atempts: 1\n", 7, "expect[0].atempts", `did you mean "attempts"?`},
		{"statuses bad name", base + "expect:\n  - {task: 0, statuses: [timout]}\n", 6, "expect[0].statuses[0]", `(did you mean "timeout"?)`},
		{"statuses fault on a task", base + "expect:\n  - {task: 0, statuses: [hang]}\n", 6, "expect[0].statuses[0]", `want a status code or one of timeout`},
		{"statuses class on a bin", base + "expect:\n  - {bin: hook, statuses: [timeout]}\n", 6, "expect[0].statuses[0]", "want a status code or one of reset, close, hang"},
		{"statuses code", base + "expect:\n  - {task: 0, statuses: [999]}\n", 6, "expect[0].statuses[0]", "in 100..599, got 999"},
		{"statuses not a list", base + "expect:\n  - {task: 0, statuses: 200}\n", 6, "expect[0].statuses", "want a list"},
		{"statuses mapping entry", base + "expect:\n  - {task: 0, statuses: [{a: 1}]}\n", 6, "expect[0].statuses[0]", "want a status code"},
		{"attempts negative", base + "expect:\n  - {task: 0, attempts: -1}\n", 6, "expect[0].attempts", "want 0..100000, got -1"},
		{"callback_succeeded text", base + "expect:\n  - {task: 0, callback_succeeded: maybe}\n", 6, "expect[0].callback_succeeded", "want true or false"},
		{"task_status bad", base + "expect:\n  - {task: 0, task_status: done}\n", 6, "expect[0].task_status", "want one of pending, completed, canceled, error"},
		{"delivery bad", base + "expect:\n  - {task: 0, delivery: completd, attempts: 1}\n", 6, "expect[0].delivery", `(did you mean "completed"?)`},
		{"kind bad", base + "expect:\n  - {bin: hook, kind: smtp, captures: 1}\n", 6, "expect[0].kind", "want one of http, email"},
		{"within zero", base + "expect:\n  - {task: 0, within: 0s}\n", 6, "expect[0].within", "must be positive"},
		{"within huge", base + "expect:\n  - {task: 0, within: 10000h}\n", 6, "expect[0].within", "over the"},
		{"at_least over within", base + "expect:\n  - task: 0\n    within: 1m\n    at_least: 2m\n", 8, "expect[0].at_least", "more than within"},
		{"subject on http", base + "expect:\n  - {bin: hook, kind: http, subject_contains: x}\n", 6, "expect[0].subject_contains", "only e-mail captures"},
		{"body_contains empty", base + "expect:\n  - {bin: hook, body_contains: ''}\n", 6, "expect[0].body_contains", "want 1 to 1000 bytes"},
		{"alias to nowhere is a syntax error", "name: *x\n", 0, "", "unknown anchor"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse([]byte(tt.text), "", noRead)
			checkParseError(t, err, tt.line, tt.field, tt.msg)
		})
	}
}

func TestParseYAMLBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("bins: {hook: }\ntasks:\n  - type: generic\n    params:\n")
	b.WriteString("      a: &a [x, x, x, x, x, x, x, x, x, x]\n")
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h"} {
		b.WriteString("      " + name + ": &" + name + " [")
		for i := 0; i < 10; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*" + prev)
		}
		b.WriteString("]\n")
		prev = name
	}
	b.WriteString("expect: [{task: 0, attempts: 1}]\n")
	start := time.Now()
	_, err := parse([]byte(b.String()), "", noRead)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("got the bomb refused after %s, want it refused quickly", elapsed)
	}
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "YAML bomb") || pe.Line == 0 {
		t.Fatalf("got %v, want a *ParseError about a YAML bomb, with a line", err)
	}
}

func TestParseTooBig(t *testing.T) {
	_, err := parse(make([]byte, MaxSize+1), "", noRead)
	checkParseError(t, err, 0, "", "over the")
}

func TestParseDeepNesting(t *testing.T) {
	text := "bins: {hook: }\ntasks:\n  - type: generic\n    params: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\nexpect: [{task: 0, attempts: 1}]\n"
	_, err := parse([]byte(text), "", noRead)
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "nested more than") {
		t.Fatalf("got %v, want an error about nesting", err)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	MustWriteFile(t, dir, "scripts/mine.yaml", "name: mine\nsteps:\n  - {status: 418, body: '{{bins.hook.name}}'}\n")
	path := MustWriteFile(t, dir, "runs/first.yaml", `bins:
  hook: {scenario: ../scripts/mine.yaml}
expect: [{bin: hook, captures: 0}]
`)
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "first" || f.Path != path {
		t.Errorf("got name %q path %q, want the file's base name and its path", f.Name, f.Path)
	}
	if b := f.Bins[0]; b.Source != "file ../scripts/mine.yaml" || b.Scenario == nil || b.Scenario.Steps[0].Status != 418 {
		t.Errorf("got bin %+v, want the script of the file beside the run file's folder", b)
	}

	bad := MustWriteFile(t, dir, "runs/bad.yaml", "bins:\n  hook: {scenario: ../scripts/nope.yaml}\nexpect: [{bin: hook, captures: 0}]\n")
	_, err = ReadFile(bad)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Path != bad || pe.Line != 2 || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad+": line 2") {
		t.Errorf("got %v, want a *ParseError naming the run file and line 2", err)
	}

	badScript := MustWriteFile(t, dir, "scripts/bad.yaml", "steps:\n  - status: 900\n")
	_ = badScript
	withBad := MustWriteFile(t, dir, "runs/bad-script.yaml", "bins:\n  hook: {scenario: ../scripts/bad.yaml}\nexpect: [{bin: hook, captures: 0}]\n")
	_, err = ReadFile(withBad)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "steps[0].status") {
		t.Errorf("got %v, want an error at line 2 naming the script's field steps[0].status", err)
	}

	for _, tt := range []struct {
		name string
		path string
		want string
	}{
		{"missing", filepath.Join(dir, "nope.yaml"), "no such file"},
		{"folder", dir, "not a regular file"},
		{"device", os.DevNull, "not a regular file"},
	} {
		_, err := ReadFile(tt.path)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an ErrInvalid error holding %q", tt.name, err, tt.want)
		}
		if tt.name == "missing" && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing: got %v, want it to wrap fs.ErrNotExist", err)
		}
	}

	big := MustWriteFile(t, dir, "big.yaml", "name: x\n"+strings.Repeat("#", MaxSize))
	if _, err := ReadFile(big); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("big: got %v, want an error about the size limit", err)
	}
	// A scenario path to a device is refused before it is read.
	dev := MustWriteFile(t, dir, "runs/dev.yaml", "bins:\n  hook: {scenario: "+os.DevNull+"}\nexpect: [{bin: hook, captures: 0}]\n")
	if _, err := ReadFile(dev); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("device scenario: got %v, want it refused as not a regular file", err)
	}
	if os.Geteuid() != 0 {
		locked := MustWriteFile(t, dir, "locked.yaml", "name: x\n")
		os.Chmod(locked, 0)
		if _, err := ReadFile(locked); !errors.Is(err, ErrInvalid) || !errors.Is(err, fs.ErrPermission) {
			t.Errorf("unreadable: got %v, want ErrInvalid wrapping fs.ErrPermission", err)
		}
	}
}

// examples/run/README.md lists every example run file with one line, and
// its sample of the format parses.
func TestExamplesREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "examples", "run", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	for _, path := range exampleFiles(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		if n := strings.Count(text, "\n- `"+name+"`: "); n != 1 {
			t.Errorf("README lines for %q: got %d, want 1", name, n)
		}
	}
	_, sample, ok := strings.Cut(text, "```yaml\n")
	sample, _, ok2 := strings.Cut(sample, "```")
	if !ok || !ok2 {
		t.Fatal("README has no ```yaml sample")
	}
	read := func(string) ([]byte, error) { return []byte("steps: [{status: 200}]\n"), nil }
	f, err := parse([]byte(sample), "", read)
	if err != nil {
		t.Fatalf("the README's sample does not parse: %v", err)
	}
	if len(f.Bins) != 4 || len(f.Tasks) != 2 || len(f.Expect) != 3 {
		t.Errorf("sample: got %d bins, %d tasks, %d expectations, want 4, 2, 3", len(f.Bins), len(f.Tasks), len(f.Expect))
	}
}
