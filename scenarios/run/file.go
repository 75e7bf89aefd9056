// Package run implements run files, the end-to-end half of the "Scenarios"
// section of the SPEC: a run file names bins (each with a scenario), tasks
// to create and drive through the task API, and expectations on what
// happened (callback_succeeded, the attempts, the status sequence the
// receiver gave, e-mail captures, timing on the sender's clock). A Runner
// plays one against a callbin over its HTTP API only, prints each attempt
// as it happens (from the live stream), and checks the expectations;
// WriteJUnit reports the results for CI.
//
// A run file looks like this:
//
//	name: retries until the receiver recovers
//	time_scale: 3600
//	bins:
//	  hook: {scenario: fail-3-then-ok}
//	tasks:
//	  - type: categorization
//	    callback_url: "{{bins.hook.url}}"
//	    params: {attachment_type: text, attachment: "a red apple", categories: [red, green]}
//	    complete: {category: red}
//	expect:
//	  - task: 0
//	    callback_succeeded: true
//	    attempts: 4
//	    statuses: [500, 500, 500, 200]
//	    within: 2m
//	  - bin: hook
//	    captures: 4
//	timeout: 60s
//
// The package imports only scenarios from the project: it talks to inbox,
// sender and the stream over HTTP, so it runs as well against a callbin in
// the same process as against one on another machine.
package run

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/callbin/callbin/scenarios"
)

// Limits that a run file must keep; Parse refuses anything beyond them with
// an error naming the field.
const (
	MaxSize            = 256 << 10 // bytes of run file text
	MaxBins            = 100
	MaxTasks           = 200
	MaxSteps           = 20 // steps of one task
	MaxExpect          = 500
	MaxStatuses        = 1000 // entries of one statuses list
	MaxBinName         = 32
	MaxTimeout         = time.Hour
	DefaultTimeout     = 60 * time.Second
	MaxCallbackTimeout = 10 * time.Minute
	MaxTimeScale       = 1e9
	MaxBound           = 365 * 24 * time.Hour // within and at_least
)

// ErrInvalid is wrapped by every error that Parse and ReadFile return for a
// run file that cannot be used (a *ParseError, or a file that cannot be
// read), so that a command can tell a usage error from a failed run.
var ErrInvalid = errors.New("invalid run file")

// File is a parsed run file.
type File struct {
	Path        string // where it was read from; "" when parsed from bytes
	Name        string // name:, or the file's base name
	Description string

	// TimeScale is the sender clock speed the file wants (time_scale:), 0
	// when not given. An in-process callbin takes it; a shared server keeps
	// its own.
	TimeScale float64
	// CallbackTimeout is the per-attempt timeout the file wants
	// (callback_timeout:), 0 when not given; like TimeScale, only an
	// in-process callbin takes it.
	CallbackTimeout time.Duration
	// Seed seeds the chance draws of the bins' scenarios (seed:), 0 when
	// not given; only an in-process callbin takes it.
	Seed int64
	// Timeout bounds the whole run in wall-clock time (timeout:);
	// DefaultTimeout when not given.
	Timeout time.Duration
	// Parallel runs every task at once (parallel: true); by default a task
	// starts when the previous one has settled.
	Parallel bool

	Bins   []Bin // in the order written
	Tasks  []Task
	Expect []Expectation
}

// Bin is a bin the run creates, under a name unique to the run.
type Bin struct {
	Name string // the name in the file; the real bin gets a per-run prefix
	// Scenario is the bin's script, nil for the default reply. Its strings
	// may hold {{bins.NAME.url}} and the like, expanded once the bins exist.
	Scenario *scenarios.Script
	// Source says where the script came from: "library NAME", "file PATH",
	// "inline", or "" for none.
	Source string
	Line   int
}

// Task is a task the run creates through the task API, then drives with
// its steps.
type Task struct {
	Type string
	// Request is the creation request without its type: callback_url,
	// instruction, params, metadata, unique_id, is_test and type-specific
	// fields, as JSON values (map[string]any, []any, string, int64, float64,
	// bool, nil). Its strings may hold templates.
	Request map[string]any
	Steps   []Step
	Line    int
}

// Step actions: what a step does to its task, each through the task API.
const (
	ActionComplete = "complete" // POST /v1/task/{id}/complete {"response": Body}
	ActionAudit    = "audit"    // POST /v1/task/{id}/audit Body
	ActionRecall   = "recall"   // POST /v1/task/{id}/recall
	ActionCancel   = "cancel"   // POST /v1/task/{id}/cancel
	ActionRetry    = "retry"    // POST /v1/task/{id}/callbacks/retry
)

var actions = []string{ActionComplete, ActionAudit, ActionRecall, ActionCancel, ActionRetry}

// Step is one action on a task. The runner waits for every callback the
// task has so far to be decided before it takes the next step.
type Step struct {
	Action string
	Body   any // complete: the response; audit: the request; else nil
	Line   int
}

// Callback events, as the sender names its deliveries (Expectation.Delivery).
var deliveryEvents = []string{"completed", "error", "audit", "recall"}

// Expectation is one thing a run checks, about a task or about a bin.
// Fields left at their zero value (nil, "", 0) are not checked; Parse
// refuses an expectation that checks nothing.
type Expectation struct {
	Line int

	// Task is the index of the task (in Tasks), or -1 for a bin
	// expectation.
	Task int
	// Delivery narrows the attempts, statuses and timing to the deliveries
	// of one callback event (completed, error, audit, recall); "" means all
	// of the task's deliveries, oldest first.
	Delivery          string
	CallbackSucceeded *bool
	TaskStatus        string // pending, completed, canceled, error
	// Attempts is the number of attempts made.
	Attempts *int
	// Statuses is the sequence of results: for a task, each attempt's HTTP
	// status or SMTP code, or its error class when it got no complete reply
	// (timeout, reset, closed, refused, network, ...); for a bin, each
	// capture's reply: the scripted fault when there was one, else the HTTP
	// status or SMTP code.
	Statuses []Status
	// Within and AtLeast bound the time on the sender's clock from the
	// first attempt to the start of the last one (the one that decided).
	Within  time.Duration
	AtLeast time.Duration

	// Bin is the bin's name in the file, "" for a task expectation.
	Bin string
	// Kind narrows the bin's captures to http or email.
	Kind string
	// Captures is the number of captures (of Kind, when set).
	Captures *int
	// BodyContains must be in the body of every capture that has one (for
	// e-mail: its text part, else its raw message); an e-mail refused at
	// RCPT has none. At least one capture must have a body.
	BodyContains string
	// SubjectContains must be in the subject of every e-mail capture that
	// carries a message.
	SubjectContains string
}

// IsBin reports whether the expectation is about a bin.
func (e *Expectation) IsBin() bool { return e.Bin != "" }

// Title names the expectation in reports: "task 0", "task 1 (audit)",
// "bin hook (email)".
func (e *Expectation) Title() string {
	if e.IsBin() {
		if e.Kind != "" {
			return fmt.Sprintf("bin %s (%s)", e.Bin, e.Kind)
		}
		return "bin " + e.Bin
	}
	if e.Delivery != "" {
		return fmt.Sprintf("task %d (%s)", e.Task, e.Delivery)
	}
	return fmt.Sprintf("task %d", e.Task)
}

// Status is one entry of a status sequence: a code (HTTP status or SMTP
// code) or a name (an error class of an attempt, or a fault of a capture).
type Status struct {
	Code int
	Name string
}

func (s Status) String() string {
	if s.Name != "" {
		return s.Name
	}
	return fmt.Sprint(s.Code)
}

// Names an attempt's result may have when it got no complete reply: the
// sender's error classes.
var attemptNames = []string{"timeout", "refused", "reset", "closed", "dns", "tls", "network", "config", "interrupted"}

// Names a capture's reply may have: the scripted faults.
var captureNames = []string{"reset", "close", "hang", "garbage", "slow"}

func formatStatuses(ss []Status) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = s.String()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// UsesEmail reports whether the run sends callbacks by e-mail or expects
// e-mail captures, and so needs the SMTP sink.
func (f *File) UsesEmail() bool {
	for _, t := range f.Tasks {
		if walkStrings(t.Request, func(s string) bool {
			return strings.Contains(s, ".email}}") || strings.HasPrefix(strings.ToLower(s), "mailto:")
		}) {
			return true
		}
	}
	for _, e := range f.Expect {
		if e.Kind == "email" || e.SubjectContains != "" {
			return true
		}
	}
	return false
}

// walkStrings reports whether fn is true for any string in v.
func walkStrings(v any, fn func(string) bool) bool {
	switch x := v.(type) {
	case string:
		return fn(x)
	case map[string]any:
		for _, e := range x {
			if walkStrings(e, fn) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if walkStrings(e, fn) {
				return true
			}
		}
	}
	return false
}
