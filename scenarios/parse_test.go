package scenarios

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func ptr[T any](v T) *T { return &v }

func TestParseValid(t *testing.T) {
	want := &Script{
		Name: "fail-3-then-ok",
		Steps: []Step{
			{Status: 500, Repeat: 3},
			{Status: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: `{"ok":true}`},
		},
		After: AfterLast,
	}
	tests := []struct {
		name string
		text string
		want *Script
	}{
		{"spec yaml", `name: fail-3-then-ok
steps:
  - status: 500          # HTTP status
    repeat: 3
  - status: 200
    headers: {Content-Type: application/json}
    body: '{"ok":true}'
after: last              # when steps run out: last | cycle | default
`, want},
		{"json", `{"name": "fail-3-then-ok", "steps": [{"status": 500, "repeat": 3},
			{"status": 200, "headers": {"Content-Type": "application/json"}, "body": "{\"ok\":true}"}]}`, want},
		{"json with tabs", "{\n\t\"name\": \"fail-3-then-ok\",\n\t\"steps\": [\n\t\t{\"status\": 500, \"repeat\": 3},\n\t\t{\"status\": 200, \"headers\": {\"Content-Type\": \"application/json\"}, \"body\": \"{\\\"ok\\\":true}\"}\n\t],\n\t\"after\": \"last\"\n}", want},
		{"compact json", `{"name":"fail-3-then-ok","steps":[{"status":500,"repeat":3},{"status":200,"headers":{"Content-Type":"application/json"},"body":"{\"ok\":true}"}]}`, want},
		{"json escapes yaml lacks", `{"steps": [{"status": 200, "body": "a\/b \ud83d\ude00 \ud800 \u00e9"}]}`,
			&Script{Steps: []Step{{Status: 200, Body: "a/b \U0001F600 \uFFFD é"}}, After: AfterLast}},
		{"all fields", `
name: all
description: every field
steps:
  - status: 429
    headers: {Retry-After: 30, X-Flag: true, X-Date: 2001-12-14}
    body: |
      slow down
    delay: 1m30s
    chance: 0.25
    repeat: 2
    fault: slow
    smtp: {code: 451, message: try later, at: data}
  - {chance: 1, status: 0x1F4}
after: cycle
`, &Script{Name: "all", Description: "every field", After: AfterCycle, Steps: []Step{{
			Status:  429,
			Headers: map[string]string{"Retry-After": "30", "X-Flag": "true", "X-Date": "2001-12-14"},
			Body:    "slow down\n",
			Delay:   Duration(90 * time.Second),
			Chance:  ptr(0.25),
			Repeat:  2,
			Fault:   FaultSlow,
			SMTP:    &SMTPStep{Code: 451, Message: "try later", At: AtData},
		}, {Chance: ptr(1.0), Status: 500}}}},
		{"anchors and aliases", `
steps:
  - &fail {status: 500, headers: &h {X-Why: scripted}}
  - *fail
  - {status: 200, headers: *h}
`, &Script{After: AfterLast, Steps: []Step{
			{Status: 500, Headers: map[string]string{"X-Why": "scripted"}},
			{Status: 500, Headers: map[string]string{"X-Why": "scripted"}},
			{Status: 200, Headers: map[string]string{"X-Why": "scripted"}},
		}}},
		{"empty headers dropped", "steps: [{status: 204, headers: {}}]", &Script{After: AfterLast, Steps: []Step{{Status: 204}}}},
		{"zero delay", "steps: [{status: 200, delay: 0}]", &Script{After: AfterLast, Steps: []Step{{Status: 200}}}},
		{"smtp at defaults to rcpt", "steps: [{smtp: {code: 550}}]", &Script{After: AfterLast, Steps: []Step{{SMTP: &SMTPStep{Code: 550, At: AtRcpt}}}}},
		{"max delay", "steps: [{delay: 10m}]", &Script{After: AfterLast, Steps: []Step{{Delay: Duration(MaxDelay)}}}},
		{"document marker", "---\nsteps: [{}]\n...\n", &Script{After: AfterLast, Steps: []Step{{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.text))
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %s\nwant %s", mustJSON(t, got), mustJSON(t, tt.want))
			}
		})
	}
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("json.Marshal: %v", err)
	}
	return string(b)
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		line  int    // 0: not tied to a line
		field string // the field path named
		msg   string // a part of the message
	}{
		// shape
		{"empty", "", 0, "", "empty script"},
		{"blank", " \n\t\n", 0, "", "empty script"},
		{"comments only", "# nothing\n", 0, "", "empty script"},
		{"null", "~\n", 1, "", "empty script"},
		{"list at top", "- status: 500\n", 1, "", "want a mapping with steps, got a list"},
		{"string at top", "fail-3-then-ok\n", 1, "", `want a mapping with steps, got the string "fail-3-then-ok"`},
		{"two documents", "steps: [{}]\n---\nsteps: [{}]\n", 2, "", "second YAML document"},
		{"no steps", "name: x\n", 1, "steps", "want at least one step, got none"},
		{"empty steps", "name: x\nsteps: []\n", 2, "steps", "want at least one step, got none"},
		{"null steps", "steps:\n", 1, "steps", "want a list of steps, got nothing (null)"},
		{"steps a mapping", "steps: {status: 500}\n", 1, "steps", "want a list of steps, got a mapping"},
		{"null step", "steps:\n  -\n  - status: 200\n", 2, "steps[0]", "want a mapping, got nothing (null)"},
		{"scalar step", "steps:\n  - {}\n  - 500\n", 3, "steps[1]", "want a mapping, got the integer 500"},
		// unknown and repeated fields
		{"unknown top field", "stpes: []\n", 1, "stpes", `unknown field "stpes" (did you mean "steps"?)`},
		{"unknown step field", "steps:\n  - status: 500\n    code: 3\n", 3, "steps[0].code", `unknown field "code"; known fields: status, headers`},
		{"typo with a swap", "steps: [{stauts: 500}]", 1, "steps[0].stauts", `(did you mean "status"?)`},
		{"typo plural", "steps: [{header: {A: b}}]", 1, "steps[0].header", `(did you mean "headers"?)`},
		{"unknown smtp field", "steps:\n  - smtp:\n      code: 451\n      when: rcpt\n", 4, "steps[0].smtp.when", `unknown field "when"`},
		{"json unknown field", `{"steps": [{"status": 500, "sttaus": 1}]}`, 1, "steps[0].sttaus", `did you mean "status"?`},
		{"typo in a full step", "steps:\n  - {status: 500, headers: {}, body: x, delay: 1s, chance: 1, repeat: 1, fault: slow, smtp: {code: 250},\n     sttaus: 1}\n", 3, "steps[0].sttaus", `unknown field "sttaus"`},
		{"field twice", "steps:\n  - status: 500\n    status: 200\n", 3, "steps[0].status", "given twice (first on line 2)"},
		{"header twice", "steps:\n  - headers:\n      X-A: 1\n      x-a: 2\n", 4, "steps[0].headers.x-a", `header given twice (also as "X-A")`},
		{"merge key", "base: &b {status: 500}\n", 1, "base", "unknown field"},
		{"merge key in step", "steps:\n  - &b {status: 500}\n  - <<: *b\n    repeat: 2\n", 3, "steps[1]", "merge keys (<<) are not supported"},
		// types
		{"status string", "steps:\n  - status: \"500\"\n", 2, "steps[0].status", `want an integer, got the string "500"`},
		{"status float", "steps: [{status: 500.5}]", 1, "steps[0].status", "want an integer, got the number 500.5"},
		{"status huge", "steps: [{status: 99999999999999999999}]", 1, "steps[0].status", "want an integer"},
		{"headers list", "steps: [{headers: [a, b]}]", 1, "steps[0].headers", "want a mapping, got a list"},
		{"header value null", "steps:\n  - headers: {X-A: }\n", 2, "steps[0].headers.X-A", "want text, got nothing (null)"},
		{"body list", "steps: [{body: [x]}]", 1, "steps[0].body", "want text, got a list"},
		{"body binary", "steps: [{body: !!binary aGk=}]", 1, "steps[0].body", "want text, got binary data"},
		{"body custom tag", "steps: [{body: !thing x}]", 1, "steps[0].body", `want text, got a value tagged "!thing"`},
		{"chance string", "steps: [{chance: often}]", 1, "steps[0].chance", `want a number, got the string "often"`},
		{"repeat bool", "steps: [{repeat: yes}]", 1, "steps[0].repeat", `want an integer, got the string "yes"`},
		{"repeat true", "steps: [{repeat: true}]", 1, "steps[0].repeat", "want an integer, got the boolean true"},
		{"smtp string", "steps: [{smtp: 451}]", 1, "steps[0].smtp", "want a mapping, got the integer 451"},
		{"json status string", `{"steps":[{"status":"500"}]}`, 1, "steps[0].status", "want an integer"},
		// values
		{"delay no unit", "steps:\n  - delay: 5\n", 2, "steps[0].delay", `"5" is not a Go duration`},
		{"delay words", "steps: [{delay: soon}]", 1, "steps[0].delay", `"soon" is not a Go duration`},
		{"delay negative", "steps:\n  - status: 200\n    delay: -1s\n", 3, "steps[0].delay", "must not be negative, got -1s"},
		{"delay huge", "steps:\n  - delay: 11m\n", 2, "steps[0].delay", "11m0s is over the 10m0s limit"},
		{"delay overflow", "steps: [{delay: 9999999999h}]", 1, "steps[0].delay", "is not a Go duration"},
		{"repeat zero", "steps:\n  - status: 500\n    repeat: 0\n", 3, "steps[0].repeat", "want 1..1000000, got 0"},
		{"repeat negative", "steps: [{repeat: -2}]", 1, "steps[0].repeat", "want 1..1000000, got -2"},
		{"repeat huge", "steps: [{repeat: 1000001}]", 1, "steps[0].repeat", "want 1..1000000, got 1000001"},
		{"status zero", "steps: [{status: 0}]", 1, "steps[0].status", "want an HTTP status in 100..599, got 0"},
		{"status 99", "steps: [{status: 99}]", 1, "steps[0].status", "got 99"},
		{"status 600", "steps:\n  - {}\n  - status: 600\n", 3, "steps[1].status", "want an HTTP status in 100..599, got 600"},
		{"chance above 1", "steps:\n  - chance: 1.5\n", 2, "steps[0].chance", "want a probability in 0..1, got 1.5"},
		{"chance negative", "steps: [{chance: -0.1}]", 1, "steps[0].chance", "got -0.1"},
		{"chance nan", "steps: [{chance: .nan}]", 1, "steps[0].chance", "got NaN"},
		{"chance inf", "steps: [{chance: .inf}]", 1, "steps[0].chance", "got +Inf"},
		{"fault unknown", "steps: [{fault: explode}]", 1, "steps[0].fault", `want one of reset, close, hang, garbage, slow, got "explode"`},
		{"fault empty", "steps: [{fault: ''}]", 1, "steps[0].fault", `got ""`},
		{"fault upper", "steps: [{fault: RESET}]", 1, "steps[0].fault", `got "RESET"`},
		{"after unknown", "steps: [{}]\nafter: never\n", 2, "after", `want one of last, cycle, default, got "never"`},
		{"after empty", "steps: [{}]\nafter: ''\n", 2, "after", `got ""`},
		{"smtp code low", "steps:\n  - smtp: {code: 199}\n", 2, "steps[0].smtp.code", "want an SMTP code in 200..599, got 199"},
		{"smtp code high", "steps: [{smtp: {code: 600}}]", 1, "steps[0].smtp.code", "got 600"},
		{"smtp code missing", "steps:\n  - smtp: {at: data}\n", 2, "steps[0].smtp.code", "missing"},
		{"smtp at", "steps:\n  - smtp: {code: 451, at: mail}\n", 2, "steps[0].smtp.at", `want rcpt or data, got "mail"`},
		{"smtp message newline", "steps:\n  - smtp: {code: 451, message: \"a\\r\\nb\"}\n", 2, "steps[0].smtp.message", "control character"},
		{"name newline", "name: \"a\\nb\"\nsteps: [{}]\n", 1, "name", "control character U+000A"},
		{"name long", "name: " + strings.Repeat("n", MaxNameLen+1) + "\nsteps: [{}]\n", 1, "name", "want at most 128 bytes"},
		{"too many steps", "steps: [" + strings.Repeat("{},", MaxSteps) + "{}]", 1, "steps", "want at most 1000 steps, got 1001"},
		// headers
		{"header name space", "steps:\n  - headers: {\"X A\": b}\n", 2, "steps[0].headers.X A", `header name "X A" holds ' '`},
		{"header name empty", "steps: [{headers: {\"\": b}}]", 1, "steps[0].headers.", "empty header name"},
		{"header value newline", "steps:\n  - headers:\n      X-A: \"b\\r\\nX-Injected: 1\"\n", 3, "steps[0].headers.X-A", "control byte 0x0d"},
		{"content-length", "steps: [{headers: {Content-Length: 5}}]", 1, "steps[0].headers.Content-Length", "set by the server"},
		{"transfer-encoding", "steps: [{headers: {transfer-encoding: chunked}}]", 1, "steps[0].headers.transfer-encoding", "set by the server"},
		{"too many headers", "steps: [{headers: {" + manyHeaders(MaxHeaders+1) + "}}]", 1, "steps[0].headers", "want at most 100 entries, got 101"},
		// combinations
		{"body with 204", "steps:\n  - status: 204\n    body: x\n", 3, "steps[0].body", "a 204 reply has no body"},
		{"body with 304", "steps: [{status: 304, body: x}]", 1, "steps[0].body", "a 304 reply has no body"},
		{"body with 101", "steps: [{status: 101, body: x}]", 1, "steps[0].body", "a 101 reply has no body"},
		{"reset with status", "steps:\n  - fault: reset\n    status: 500\n", 3, "steps[0].status", "not allowed with fault reset"},
		{"close with body", "steps: [{fault: close, body: x}]", 1, "steps[0].body", "not allowed with fault close"},
		{"hang with headers", "steps: [{fault: hang, headers: {A: b}}]", 1, "steps[0].headers", "not allowed with fault hang"},
		{"hang with delay", "steps:\n  - fault: hang\n    delay: 1s\n", 3, "steps[0].delay", "not allowed with fault hang"},
		{"hang with smtp", "steps:\n  - fault: hang\n    smtp: {code: 451}\n", 3, "steps[0].smtp", "not allowed with fault hang"},
		{"garbage with status", "steps: [{fault: garbage, status: 200}]", 1, "steps[0].status", "not allowed with fault garbage"},
		{"garbage with smtp", "steps: [{fault: garbage, smtp: {code: 250}}]", 1, "steps[0].smtp", "not allowed with fault garbage"},
		// aliases
		{"unknown alias", "steps: [*nope]", 0, "", "unknown anchor 'nope'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.text))
			if err == nil {
				t.Fatalf("got script %s, want an error", mustJSON(t, s))
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got error %T %v, want a *ParseError", err, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid): got false, want true")
			}
			if pe.Line != tt.line {
				t.Errorf("line: got %d, want %d (error: %v)", pe.Line, tt.line, err)
			}
			if pe.Field != tt.field {
				t.Errorf("field: got %q, want %q (error: %v)", pe.Field, tt.field, err)
			}
			if pe.Msg == "" || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("message: got %q, want it to hold %q", pe.Msg, tt.msg)
			}
			if tt.line > 0 && !strings.HasPrefix(err.Error(), fmt.Sprintf("line %d", tt.line)) {
				t.Errorf("Error(): got %q, want it to start with %q", err.Error(), fmt.Sprintf("line %d", tt.line))
			}
		})
	}
}

func manyHeaders(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("X-H%d: v", i)
	}
	return strings.Join(parts, ", ")
}

// YAML syntax errors carry the line the YAML parser names, which for some
// errors is where the enclosing block starts (or the line before) rather
// than the line at fault: the line is checked to be given and not past the
// fault.
func TestParseSyntaxErrors(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		maxLine int
		msg     string
	}{
		{"bad indent", "steps:\n  - status: 500\n   repeat: 3\n", 3, "did not find expected '-' indicator"},
		{"unclosed flow", "steps: [{status: 500}\n", 2, "did not find expected ',' or ']'"},
		{"tab indent", "steps:\n\t- status: 500\n", 2, "found character that cannot start any token"},
		{"bad escape", "name: x\nsteps: [{body: \"\\q\"}]\n", 2, "found unknown escape character"},
		{"mapping in scalar", "steps: [{}]\nname: a: b\n", 2, "mapping values are not allowed in this context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.text))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *ParseError", err)
			}
			if pe.Line < 1 || pe.Line > tt.maxLine {
				t.Errorf("line: got %d, want 1..%d (%v)", pe.Line, tt.maxLine, err)
			}
			if pe.Msg != tt.msg {
				t.Errorf("message: got %q, want %q", pe.Msg, tt.msg)
			}
		})
	}
}

// In one-line JSON every error is on line 1: the column tells where.
func TestParseErrorColumn(t *testing.T) {
	text := `{"steps": [{"status": 500}, {"status": 700}]}`
	_, err := Parse([]byte(text))
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *ParseError", err)
	}
	if want := strings.Index(text, "700") + 1; pe.Line != 1 || pe.Column != want {
		t.Errorf("position: got line %d column %d, want line 1 column %d", pe.Line, pe.Column, want)
	}
	if want := "line 1, column 40: steps[1].status: want an HTTP status in 100..599, got 700"; err.Error() != want {
		t.Errorf("Error(): got %q, want %q", err.Error(), want)
	}
}

func TestParseTooLarge(t *testing.T) {
	text := "steps: [{body: '" + strings.Repeat("x", MaxSize) + "'}]"
	_, err := Parse([]byte(text))
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "over the 65536-byte limit") {
		t.Fatalf("got %v, want a size error", err)
	}
	// Just under the limit is fine.
	text = "steps: [{body: '" + strings.Repeat("x", MaxSize-30) + "'}]"
	if _, err := Parse([]byte(text)); err != nil {
		t.Errorf("a script of %d bytes: got %v, want no error", len(text), err)
	}
}

// A YAML bomb: aliases that expand exponentially. The parser must refuse it
// quickly, whatever field the expansion hides in.
func TestParseAliasBomb(t *testing.T) {
	laughs := func(where string) string {
		var b strings.Builder
		b.WriteString("steps:\n  - &s0 {status: 500, headers: {X-Lol: lol}}\n")
		prev := "s0"
		for i := 1; i <= 9; i++ {
			fmt.Fprintf(&b, "  - &s%d [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n", i, prev, prev, prev, prev, prev, prev, prev, prev, prev)
			prev = fmt.Sprintf("s%d", i)
		}
		fmt.Fprintf(&b, "%s*%s\n", where, prev)
		return b.String()
	}
	// Wide rather than deep: a step with long headers, listed a thousand times.
	var wide strings.Builder
	wide.WriteString("steps:\n  - &s {status: 500, headers: {")
	for i := range 90 {
		fmt.Fprintf(&wide, "X-H%d: %s, ", i, strings.Repeat("v", 300))
	}
	wide.WriteString("X-End: v}}\n")
	for range 999 {
		wide.WriteString("  - *s\n")
	}
	tests := []struct {
		name, text, msg string
	}{
		{"billion laughs as a step", laughs("  - "), "want a mapping, got a list"},
		{"wide aliases", wide.String(), "aliases expand the script beyond"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.text) > MaxSize {
				t.Fatalf("bomb of %d bytes is over MaxSize; it would not test the alias guard", len(tt.text))
			}
			start := time.Now()
			_, err := Parse([]byte(tt.text))
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got error %v, want one holding %q", err, tt.msg)
			}
			if took > time.Second {
				t.Errorf("took %v, want well under 1s", took)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		s     *Script
		field string // "" for valid
	}{
		{"nil", nil, ""},
		{"valid", &Script{Steps: []Step{{Status: 200}}}, "-"},
		{"no steps", &Script{}, "steps"},
		{"bad after", &Script{Steps: []Step{{}}, After: "x"}, "after"},
		{"bad status", &Script{Steps: []Step{{}, {Status: 42}}}, "steps[1].status"},
		{"negative repeat", &Script{Steps: []Step{{Repeat: -1}}}, "steps[0].repeat"},
		{"negative delay", &Script{Steps: []Step{{Delay: Duration(-time.Second)}}}, "steps[0].delay"},
		{"long delay", &Script{Steps: []Step{{Delay: Duration(time.Hour)}}}, "steps[0].delay"},
		{"bad chance", &Script{Steps: []Step{{Chance: ptr(2.0)}}}, "steps[0].chance"},
		{"bad fault", &Script{Steps: []Step{{Fault: "boom"}}}, "steps[0].fault"},
		{"smtp zero code", &Script{Steps: []Step{{SMTP: &SMTPStep{}}}}, "steps[0].smtp.code"},
		{"smtp bad at", &Script{Steps: []Step{{SMTP: &SMTPStep{Code: 250, At: "helo"}}}}, "steps[0].smtp.at"},
		{"bad header", &Script{Steps: []Step{{Headers: map[string]string{"A:B": "c"}}}}, "steps[0].headers.A:B"},
		{"body not utf-8", &Script{Steps: []Step{{Body: "\xff"}}}, "steps[0].body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if tt.field == "-" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *ParseError", err)
			}
			if pe.Field != tt.field || pe.Line != 0 {
				t.Errorf("got field %q line %d, want field %q line 0 (%v)", pe.Field, pe.Line, tt.field, err)
			}
		})
	}
}

func TestFaultValid(t *testing.T) {
	for _, f := range []Fault{FaultNone, FaultReset, FaultClose, FaultHang, FaultGarbage, FaultSlow} {
		if !f.Valid() {
			t.Errorf("Fault(%q).Valid(): got false, want true", f)
		}
	}
	for _, f := range []Fault{"Reset", "drop", " reset"} {
		if f.Valid() {
			t.Errorf("Fault(%q).Valid(): got true, want false", f)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	for _, d := range []time.Duration{0, 250 * time.Millisecond, 90 * time.Second, MaxDelay} {
		b, err := json.Marshal(Duration(d))
		if err != nil {
			t.Fatal(err)
		}
		if want := `"` + d.String() + `"`; string(b) != want {
			t.Errorf("Marshal(%v): got %s, want %s", d, b, want)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || time.Duration(back) != d {
			t.Errorf("Unmarshal(%s): got %v, %v, want %v", b, time.Duration(back), err, d)
		}
	}
	var d Duration
	for _, bad := range []string{`5`, `"5"`, `"soon"`, `null1`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("Unmarshal(%s): got no error, want one", bad)
		}
	}
}

// Parse output marshals to JSON that Parse reads back as the same script:
// the shape the API shows is the shape it takes.
func TestJSONRoundTrip(t *testing.T) {
	for _, s := range Library() {
		checkRoundTrip(t, s)
	}
}

func checkRoundTrip(tb testing.TB, s *Script) {
	tb.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		tb.Fatalf("json.Marshal: %v", err)
	}
	back, err := Parse(b)
	if err != nil {
		tb.Fatalf("Parse(json.Marshal(s)) of %s: got error %v, want none", b, err)
	}
	if !reflect.DeepEqual(back, s) {
		tb.Fatalf("JSON round trip:\ngot  %s\nwant %s", mustJSON(tb, back), b)
	}
}

// The ready scripts written back as YAML read the same (delays as "15s").
func TestYAMLRoundTrip(t *testing.T) {
	for _, s := range Library() {
		y, err := yaml.Marshal(s)
		if err != nil {
			t.Fatalf("yaml.Marshal(%s): %v", s.Name, err)
		}
		back, err := Parse(y)
		if err != nil {
			t.Fatalf("Parse(yaml.Marshal(%s)) of %q: got %v, want no error", s.Name, y, err)
		}
		if !reflect.DeepEqual(back, s) {
			t.Errorf("YAML round trip of %s:\ngot  %s\nwant %s", s.Name, mustJSON(t, back), mustJSON(t, s))
		}
	}
}

// Deep nesting is refused by the YAML parser's own depth limit, quickly.
func TestParseDeepNesting(t *testing.T) {
	for _, text := range []string{
		"steps: " + strings.Repeat("[", 30000) + strings.Repeat("]", 30000),
		"steps:\n" + strings.Repeat(" - ", 20000),
	} {
		start := time.Now()
		_, err := Parse([]byte(text))
		if err == nil || !strings.Contains(err.Error(), "exceeded max depth") {
			t.Errorf("nesting of %d bytes: got %v, want a depth error", len(text), err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("nesting of %d bytes: took %v, want well under 1s", len(text), took)
		}
	}
}
