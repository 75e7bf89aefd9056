package run

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds the run-file parser arbitrary bytes, starting from the
// example run files. Whatever the input: no panic, no file read; an error
// is a *ParseError wrapping ErrInvalid with a message and no negative
// position; a parsed file keeps every bound, each expectation points at a
// task or bin that exists and checks something, and its templates expand
// to the bins' values.
func FuzzParse(f *testing.F) {
	for _, path := range exampleFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		fullFile,
		"bins: {hook: {scenario: {steps: [{status: 500, repeat: 3}, {status: 200}]}}}\nexpect: [{bin: hook, captures: 4}]\n",
		"bins: {a: }\ntasks: [{type: generic, callback_url: '{{bins.a.url}}{{bins.a.email}}', steps: [recall, {audit: {accepted: true}}]}]\nexpect: [{task: 0, statuses: [reset, 200], delivery: audit}]\n",
		"x: &a [*a]\n",
		"bins: {a: {scenario: ./file.yaml}}\nexpect: [{bin: a, captures: 0}]\n",
		"tasks: [{type: generic, params: {x: &p [1, *p]}}]\n",
		"expect: [{task: 0}]\n",
		"",
		"~",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parse(data, "", noRead)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) || pe.Msg == "" {
				t.Fatalf("error %T %q: want a *ParseError wrapping ErrInvalid, with a message", err, err)
			}
			if pe.Line < 0 || pe.Column < 0 {
				t.Fatalf("error %q: got line %d column %d, want none negative", err, pe.Line, pe.Column)
			}
			return
		}
		if file.Timeout <= 0 || file.Timeout > MaxTimeout || file.CallbackTimeout < 0 || file.CallbackTimeout > MaxCallbackTimeout ||
			(file.TimeScale != 0 && (file.TimeScale < 1 || file.TimeScale > MaxTimeScale)) {
			t.Fatalf("got timeout %s callback_timeout %s time_scale %v, want them in bounds", file.Timeout, file.CallbackTimeout, file.TimeScale)
		}
		if len(file.Bins) > MaxBins || len(file.Tasks) > MaxTasks || len(file.Expect) == 0 || len(file.Expect) > MaxExpect {
			t.Fatalf("got %d bins, %d tasks, %d expectations, want them in bounds", len(file.Bins), len(file.Tasks), len(file.Expect))
		}
		x := expander{}
		for _, b := range file.Bins {
			if !validBinName(b.Name) {
				t.Fatalf("bin name %q accepted", b.Name)
			}
			if b.Scenario != nil {
				if err := b.Scenario.Validate(); err != nil {
					t.Fatalf("bin %s: scenario does not validate: %v", b.Name, err)
				}
			}
			x[b.Name] = BinInfo{Name: "p-" + b.Name, URL: "http://127.0.0.1:1/b/p-" + b.Name, Email: "p-" + b.Name + "@callbin.local"}
		}
		for i, task := range file.Tasks {
			if !validTaskType(task.Type) || len(task.Steps) > MaxSteps {
				t.Fatalf("task %d: got type %q and %d steps", i, task.Type, len(task.Steps))
			}
			req := x.expandValue(task.Request)
			left := func(s string) bool {
				for name := range x {
					for _, field := range templateFields {
						if strings.Contains(s, "{{bins."+name+"."+field+"}}") {
							return true
						}
					}
				}
				return false
			}
			if walkStrings(req, left) {
				t.Fatalf("task %d: a template was left after expansion: %#v", i, req)
			}
			if _, err := jsonText(req); err != nil {
				t.Fatalf("task %d: request does not encode as JSON: %v", i, err)
			}
			for _, st := range task.Steps {
				if _, err := jsonText(st.Body); err != nil {
					t.Fatalf("task %d: step %s does not encode as JSON: %v", i, st.Action, err)
				}
			}
		}
		obs := &Observation{Tasks: make([]TaskObservation, len(file.Tasks)), Bins: map[string][]Capture{}}
		for i := range file.Expect {
			e := &file.Expect[i]
			if e.IsBin() == (e.Task >= 0) || (!e.IsBin() && e.Task >= len(file.Tasks)) {
				t.Fatalf("expect[%d]: got task %d bin %q, want exactly one that exists", i, e.Task, e.Bin)
			}
			if e.CallbackSucceeded == nil && e.TaskStatus == "" && e.Attempts == nil && e.Statuses == nil && e.Within == 0 &&
				e.AtLeast == 0 && e.Captures == nil && e.BodyContains == "" && e.SubjectContains == "" {
				t.Fatalf("expect[%d] checks nothing: %+v", i, e)
			}
			e.Check(obs) // must not panic on an empty observation
		}
	})
}
