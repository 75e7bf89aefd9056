package run

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// attempt builds an attempt at t0+at with an HTTP status or an error class.
func attempt(n int, at time.Duration, status int, class string) Attempt {
	a := Attempt{N: n, At: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(at)}
	if status != 0 {
		a.Status = &status
	}
	if class != "" {
		a.ErrorClass = &class
	}
	return a
}

func capture(id int64, kind string, status int, fault string, smtp int) Capture {
	c := Capture{ID: id, Kind: kind, Size: 10}
	c.Reply.Status, c.Reply.Fault, c.Reply.SMTPCode = status, fault, smtp
	return c
}

func TestAttemptResult(t *testing.T) {
	for _, tt := range []struct {
		a    Attempt
		want string
	}{
		{attempt(1, 0, 500, "http_status"), "500"},
		{attempt(1, 0, 200, ""), "200"},
		{attempt(1, 0, 302, "redirect"), "302"},
		{attempt(1, 0, 451, "smtp"), "451"},
		{attempt(1, 0, 0, "timeout"), "timeout"},
		{attempt(1, 0, 200, "timeout"), "timeout"}, // the status line came, the body did not
		{attempt(1, 0, 0, "reset"), "reset"},
		{attempt(1, 0, 0, "closed"), "closed"},
		{attempt(1, 0, 0, "some_new_class"), "some_new_class"},
		{Attempt{InFlight: true}, "in_flight"},
		{Attempt{}, "none"},
	} {
		if got := tt.a.Result().String(); got != tt.want {
			t.Errorf("%+v: got %s, want %s", tt.a, got, tt.want)
		}
	}
	for _, tt := range []struct {
		c    Capture
		want string
	}{
		{capture(1, "http", 500, "", 0), "500"},
		{capture(1, "http", 200, "slow", 0), "slow"},
		{capture(1, "http", 0, "hang", 0), "hang"},
		{capture(1, "email", 0, "", 451), "451"},
		{capture(1, "email", 0, "close", 421), "close"},
		{capture(1, "http", 0, "", 0), "none"},
	} {
		if got := tt.c.Result().String(); got != tt.want {
			t.Errorf("%+v: got %s, want %s", tt.c, got, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	recovered := TaskObservation{ID: "t1", Status: "completed", CallbackSucceeded: ptr(true), Settled: true,
		Deliveries: []Delivery{{Event: "completed", State: "succeeded", Attempts: []Attempt{
			attempt(1, 0, 500, "http_status"), attempt(2, 13*time.Second, 0, "timeout"), attempt(3, 33*time.Second, 200, ""),
		}}}}
	audited := TaskObservation{ID: "t2", Status: "completed", CallbackSucceeded: ptr(false), Settled: true,
		Deliveries: []Delivery{
			{Event: "completed", State: "succeeded", Attempts: []Attempt{attempt(1, 0, 200, "")}},
			{Event: "audit", State: "failed", Attempts: []Attempt{attempt(1, time.Hour, 410, "http_status"), attempt(2, 25*time.Hour, 410, "http_status")}},
		}}
	undecided := TaskObservation{ID: "t3", Status: "completed", Settled: false,
		Deliveries: []Delivery{{Event: "completed", State: "pending", Attempts: []Attempt{attempt(1, 0, 500, "http_status")}}}}
	email := "email"
	body := func(s string) *string { return &s }
	mail := capture(4, email, 0, "", 250)
	mail.Email = &struct {
		Subject string `json:"subject"`
		Text    string `json:"text"`
	}{Subject: "callbin callback: completed", Text: `{"status":"completed"}`}
	refused := func(id int64) Capture { // an e-mail refused at RCPT: recorded, with no message
		c := capture(id, email, 0, "", 451)
		c.Size = 0
		return c
	}
	httpCap := capture(3, "http", 200, "", 0)
	httpCap.Body = body(`{"task_id":"t1","status":"completed"}`)
	obs := &Observation{
		Tasks: []TaskObservation{recovered, audited, undecided, {Err: "create: 400 bad params"}},
		Bins: map[string][]Capture{
			"hook": {capture(1, "http", 500, "", 0), capture(2, "http", 0, "hang", 0), httpCap, mail},
			"none": nil,
			"mail": {refused(5), refused(6), mail},
			"rcpt": {refused(7)},
		},
	}
	for _, tt := range []struct {
		name string
		e    Expectation
		want []string // substrings of each failure, in order; none when met
	}{
		{"all met", Expectation{Task: 0, CallbackSucceeded: ptr(true), TaskStatus: "completed", Attempts: ptr(3),
			Statuses: []Status{{Code: 500}, {Name: "timeout"}, {Code: 200}}, Within: time.Minute, AtLeast: 30 * time.Second}, nil},
		{"callback_succeeded", Expectation{Task: 0, CallbackSucceeded: ptr(false)}, []string{"callback_succeeded: got true, want false"}},
		{"callback_succeeded absent", Expectation{Task: 2, CallbackSucceeded: ptr(true)},
			[]string{"not decided before the run's timeout (1 attempts so far)", "callback_succeeded: got absent (undecided), want true"}},
		{"task_status", Expectation{Task: 0, TaskStatus: "pending"}, []string{`task_status: got "completed", want "pending"`}},
		{"attempts", Expectation{Task: 0, Attempts: ptr(4)}, []string{"attempts: got 3, want 4"}},
		{"statuses", Expectation{Task: 0, Statuses: []Status{{Code: 500}, {Code: 500}, {Code: 200}}},
			[]string{"statuses: got [500, timeout, 200], want [500, 500, 200]"}},
		{"statuses shorter", Expectation{Task: 0, Statuses: []Status{{Code: 500}}}, []string{"statuses: got [500, timeout, 200], want [500]"}},
		{"within", Expectation{Task: 0, Within: 30 * time.Second}, []string{"within: got 33s from the first attempt to the last, want at most 30s"}},
		{"at_least", Expectation{Task: 0, AtLeast: time.Hour}, []string{"at_least: got 33s from the first attempt to the last, want at least 1h0m0s"}},
		{"all deliveries", Expectation{Task: 1, Attempts: ptr(3), Statuses: []Status{{Code: 200}, {Code: 410}, {Code: 410}}, CallbackSucceeded: ptr(false)}, nil},
		{"one delivery", Expectation{Task: 1, Delivery: "audit", Attempts: ptr(2), Within: 24 * time.Hour, AtLeast: 24 * time.Hour}, nil},
		{"one delivery timing", Expectation{Task: 1, Delivery: "audit", Within: time.Hour}, []string{"within: got 24h0m0s"}},
		{"missing delivery", Expectation{Task: 1, Delivery: "recall", Attempts: ptr(0)}, []string{"delivery: got no recall callback (callbacks: completed, audit)"}},
		{"timing without attempts", Expectation{Task: 1, Delivery: "recall", Within: time.Hour},
			[]string{"delivery: got no recall callback", "timing: got no attempts"}},
		{"task not run", Expectation{Task: 3, Attempts: ptr(1)}, []string{"the task was not run through: create: 400 bad params"}},
		{"task out of range", Expectation{Task: 9, Attempts: ptr(1)}, []string{"task 9 was not run"}},

		{"bin all met", Expectation{Task: -1, Bin: "hook", Captures: ptr(4), Statuses: []Status{{Code: 500}, {Name: "hang"}, {Code: 200}, {Code: 250}}}, nil},
		{"bin captures", Expectation{Task: -1, Bin: "hook", Captures: ptr(3)}, []string{"captures: got 4 captures, want 3"}},
		{"bin kind", Expectation{Task: -1, Bin: "hook", Kind: "email", Captures: ptr(1), Statuses: []Status{{Code: 250}}, SubjectContains: "completed", BodyContains: `"status":"completed"`}, nil},
		{"bin kind count", Expectation{Task: -1, Bin: "hook", Kind: "http", Captures: ptr(4)}, []string{"captures: got 3 http captures, want 4"}},
		{"bin statuses", Expectation{Task: -1, Bin: "hook", Kind: "http", Statuses: []Status{{Code: 500}, {Name: "reset"}, {Code: 200}}},
			[]string{"statuses: got [500, hang, 200], want [500, reset, 200]"}},
		{"bin body not loaded", Expectation{Task: -1, Bin: "hook", Kind: "http", BodyContains: "x"}, []string{"body_contains: capture 1 has no such text"}},
		{"bin body mismatch", Expectation{Task: -1, Bin: "hook", Kind: "email", BodyContains: "error"}, []string{`body_contains: got capture 4 with "{\"status\":\"completed\"}", want it to hold "error"`}},
		{"bin subject mismatch", Expectation{Task: -1, Bin: "hook", Kind: "email", SubjectContains: "audit"}, []string{`subject_contains: got capture 4 with "callbin callback: completed", want it to hold "audit"`}},
		{"bin subject of http", Expectation{Task: -1, Bin: "hook", SubjectContains: "x"}, []string{"subject_contains: capture 1 has no such text"}},
		{"bin empty", Expectation{Task: -1, Bin: "none", Captures: ptr(0), Statuses: []Status{}}, nil},
		{"bin empty content", Expectation{Task: -1, Bin: "none", BodyContains: "x"}, []string{"body_contains: got no captures with a body"}},
		{"refused e-mail has no body to check", Expectation{Task: -1, Bin: "mail", Captures: ptr(3), Statuses: []Status{{Code: 451}, {Code: 451}, {Code: 250}},
			BodyContains: "completed", SubjectContains: "completed"}, nil},
		{"only refused e-mail", Expectation{Task: -1, Bin: "rcpt", Kind: "email", SubjectContains: "x"}, []string{"subject_contains: got no email captures with a body"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.e.Check(obs)
			if len(got) != len(tt.want) {
				t.Fatalf("got failures %q, want %d holding %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("failure %d: got %q, want it to hold %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestTitles(t *testing.T) {
	for _, tt := range []struct {
		e    Expectation
		want string
	}{
		{Expectation{Task: 2}, "task 2"},
		{Expectation{Task: 0, Delivery: "recall"}, "task 0 (recall)"},
		{Expectation{Task: -1, Bin: "hook"}, "bin hook"},
		{Expectation{Task: -1, Bin: "hook", Kind: "email"}, "bin hook (email)"},
	} {
		if got := tt.e.Title(); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestExpand(t *testing.T) {
	x := expander{"hook": {Name: "r1-hook", URL: "http://127.0.0.1:1/b/r1-hook", Email: "r1-hook@callbin.local"}}
	for _, tt := range []struct{ in, want string }{
		{"{{bins.hook.url}}", "http://127.0.0.1:1/b/r1-hook"},
		{"{{ bins.hook.url }}/x?y=1", "http://127.0.0.1:1/b/r1-hook/x?y=1"},
		{"mailto:{{bins.hook.email}}", "mailto:r1-hook@callbin.local"},
		{"{{bins.hook.name}} and {{bins.hook.name}}", "r1-hook and r1-hook"},
		{"no template", "no template"},
		{"{{bins.other.url}}", "{{bins.other.url}}"},
		{"{{bins.hook.url", "{{bins.hook.url"},
	} {
		if got := x.expandString(tt.in); got != tt.want {
			t.Errorf("expandString(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
	in := map[string]any{"a": []any{"{{bins.hook.name}}", int64(1)}, "b": map[string]any{"c": "{{bins.hook.url}}"}}
	want := map[string]any{"a": []any{"r1-hook", int64(1)}, "b": map[string]any{"c": "http://127.0.0.1:1/b/r1-hook"}}
	if got := x.expandValue(in); !reflect.DeepEqual(got, want) {
		t.Errorf("expandValue: got %#v, want %#v", got, want)
	}
	if in["b"].(map[string]any)["c"] != "{{bins.hook.url}}" {
		t.Errorf("expandValue changed its input")
	}
	f := MustParse(t, "bins:\n  hook:\n    scenario:\n      steps: [{status: 302, headers: {Location: '{{bins.hook.url}}/2'}, body: '{{bins.hook.name}}'}]\nexpect: [{bin: hook, captures: 1}]\n")
	s := x.expandScript(f.Bins[0].Scenario)
	if s.Steps[0].Headers["Location"] != "http://127.0.0.1:1/b/r1-hook/2" || s.Steps[0].Body != "r1-hook" {
		t.Errorf("expandScript: got %+v, want the templates expanded", s.Steps[0])
	}
	if f.Bins[0].Scenario.Steps[0].Headers["Location"] != "{{bins.hook.url}}/2" {
		t.Errorf("expandScript changed its input")
	}
}
