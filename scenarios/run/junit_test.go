package run

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWriteJUnit(t *testing.T) {
	f1 := MustParse(t, "name: first\nbins: {hook: }\ntasks: [{type: generic, complete: {}}]\nexpect:\n  - {task: 0, attempts: 1}\n  - {bin: hook, captures: 1}\n")
	f1.Path = "runs/first.yaml"
	f2 := MustParse(t, "name: second\nbins: {hook: }\nexpect: [{bin: hook, captures: 0}]\n")
	f3 := MustParse(t, "name: third <&>\nbins: {hook: }\nexpect: [{bin: hook, captures: 0}]\n")
	results := []*Result{
		{File: f1, Elapsed: 1500 * time.Millisecond, Checks: []CheckResult{
			{Expectation: &f1.Expect[0]},
			{Expectation: &f1.Expect[1], Failures: []string{"captures: got 0 captures, want 1", "second \x00 line"}},
		}},
		{File: f2, Skipped: "needs SMTP"},
		{File: f3, Err: errors.New("bin hook: 500 boom"), Checks: nil},
	}
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, results); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), xml.Header) {
		t.Errorf("got %q at the start, want the XML header", buf.String()[:40])
	}
	var got junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("the report does not parse: %v\n%s", err, buf.String())
	}
	if got.Tests != 5 || got.Failures != 1 || got.Errors != 2 || got.Skipped != 1 || len(got.Suites) != 3 {
		t.Fatalf("got tests %d failures %d errors %d skipped %d suites %d, want 5, 1, 2, 1, 3\n%s",
			got.Tests, got.Failures, got.Errors, got.Skipped, len(got.Suites), buf.String())
	}
	s := got.Suites[0]
	if s.Name != "first" || s.File != "runs/first.yaml" || s.Time != "1.500" || s.Tests != 2 || s.Failures != 1 {
		t.Errorf("suite 0: got %+v, want first, its file, 1.500 s, 2 tests, 1 failure", s)
	}
	if c := s.Cases[0]; c.Name != "task 0 (line 5)" || c.Failure != nil || c.Error != nil || c.Line != 5 {
		t.Errorf("case 0: got %+v, want a passed task 0 at line 5", c)
	}
	if c := s.Cases[1]; c.Failure == nil || c.Failure.Message != "captures: got 0 captures, want 1" || !strings.Contains(c.Failure.Text, "second \uFFFD line") {
		t.Errorf("case 1: got %+v, want a failure with the first line as message, all lines as text (invalid XML characters replaced)", c)
	}
	if c := got.Suites[1].Cases[0]; c.Skipped == nil || c.Skipped.Message != "needs SMTP" {
		t.Errorf("suite 1: got %+v, want a skipped case", c)
	}
	s3 := got.Suites[2]
	if s3.Name != "third <&>" || len(s3.Cases) != 2 || s3.Cases[0].Error == nil || s3.Cases[1].Name != "run" ||
		s3.Cases[1].Error == nil || s3.Cases[1].Error.Message != "bin hook: 500 boom" {
		t.Errorf("suite 2: got %+v, want an unchecked expectation and a run error", s3)
	}
}
