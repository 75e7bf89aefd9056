package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	scenariorun "github.com/callbin/callbin/scenarios/run"
)

// exampleRunFiles returns the run files of scenarios/examples/run.
func exampleRunFiles(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "scenarios", "examples", "run", "*.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) < 10 {
		tb.Fatalf("got %d example run files, want at least 10", len(files))
	}
	return files
}

// syncBuffer is an io.Writer for output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestScenarioExamples runs every example run file the way `callbin
// scenario run FILE` does (a callbin of its own per file, in process), in
// parallel. A file that sends e-mail is skipped while Main serves no SMTP.
func TestScenarioExamples(t *testing.T) {
	for _, path := range exampleRunFiles(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, err := scenariorun.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut syncBuffer
			cfg := &scenarioConfig{Stdout: &out, Stderr: &errOut}
			res := cfg.runFile(context.Background(), f)
			if res.Skipped != "" {
				t.Skipf("skipped: %s", res.Skipped)
			}
			if !res.Passed() {
				t.Fatalf("got a failed run (error %v), want every expectation met:\n%s\n%s", res.Err, out.String(), errOut.String())
			}
			t.Logf("%s: %s of wall time", f.Name, res.Elapsed.Round(time.Millisecond))
			if name == "exhaust-retries" {
				// The whole 24-hour ladder at time_scale 3600.
				if res.Elapsed >= 40*time.Second {
					t.Errorf("got %s of wall time for the full retry ladder, want under 40s", res.Elapsed)
				}
				if !strings.Contains(out.String(), "attempt 21 ") {
					t.Errorf("output does not show attempt 21 as it happened:\n%s", out.String())
				}
			}
		})
	}
}

// scenarioCLI runs `callbin scenario ARGS...` and returns the exit code and
// the output.
func scenarioCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut syncBuffer
	code := scenarioCmd(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

const passingRun = `name: passing
time_scale: 3600
bins:
  hook: {scenario: fail-once}
tasks:
  - {type: generic, callback_url: "{{bins.hook.url}}", complete: {ok: true}}
expect:
  - {task: 0, callback_succeeded: true, statuses: [503, 200]}
  - {bin: hook, captures: 2}
timeout: 20s
`

const failingRun = `name: failing
time_scale: 3600
bins:
  hook: {scenario: fail-once}
tasks:
  - {type: generic, callback_url: "{{bins.hook.url}}", complete: {ok: true}}
expect:
  - {task: 0, callback_succeeded: true, attempts: 1}
  - {bin: hook, captures: 2}
timeout: 20s
`

func TestScenarioCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pass := write("pass.yaml", passingRun)
	fail := write("fail.yaml", failingRun)
	bad := write("bad.yaml", "name: bad\ntimeot: 5s\n")

	for _, tt := range []struct {
		name    string
		args    []string
		code    int
		stdout  string
		stderr  string
		nostart bool // a usage error: nothing may run
	}{
		{"no subcommand", []string{}, 2, "", "no subcommand; want run", true},
		{"unknown subcommand", []string{"play", pass}, 2, "", `unknown subcommand "play"`, true},
		{"help", []string{"help"}, 0, "-server URL", "", true},
		{"run help", []string{"run", "-h"}, 0, "-junit file", "", true},
		{"no files", []string{"run"}, 2, "", "no run files given", true},
		{"unknown flag", []string{"run", "--fast", pass}, 2, "", "flag provided but not defined: -fast", true},
		{"missing file", []string{"run", filepath.Join(dir, "nope.yaml")}, 2, "", "no such file", true},
		{"folder", []string{"run", dir}, 2, "", "not a regular file", true},
		{"bad run file", []string{"run", pass, bad}, 2, "", bad + `: line 2, column 1: timeot: unknown field "timeot" (did you mean "timeout"?)`, true},
		{"bad server", []string{"run", "--server", "127.0.0.1:8080", pass}, 2, "", "want the callbin's base URL", true},
		{"token without server", []string{"run", "--auth-token", "x", pass}, 2, "", "-auth-token goes with -server", true},
		{"junit folder", []string{"run", "--junit", dir, pass}, 2, "", "-junit", true},
		{"pass", []string{"run", pass}, 0, "--- PASS: passing (2 of 2 expectations met", "", false},
		{"fail", []string{"run", fail}, 1, "attempts: got 2, want 1", "", false},
		{"flags after files", []string{"run", pass, "--junit", filepath.Join(dir, "after.xml")}, 0, "1 file: 1 passed", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := scenarioCLI(t, nil, tt.args...)
			if code != tt.code {
				t.Errorf("got exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout:\n%s\nwant it to hold %q", stdout, tt.stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr:\n%s\nwant it to hold %q", stderr, tt.stderr)
			}
			if tt.nostart && strings.Contains(stdout, "=== RUN") {
				t.Errorf("a usage error ran a file:\n%s", stdout)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "after.xml")); err != nil {
		t.Errorf("--junit after the files: %v", err)
	}
}

func TestScenarioJUnit(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass.yaml")
	fail := filepath.Join(dir, "fail.yaml")
	os.WriteFile(pass, []byte(passingRun), 0o644)
	os.WriteFile(fail, []byte(failingRun), 0o644)
	report := filepath.Join(dir, "report.xml")
	code, stdout, stderr := scenarioCLI(t, nil, "run", "--junit", report, pass, fail)
	if code != 1 {
		t.Fatalf("got exit code %d, want 1 (one file fails)\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "2 files: 1 passed, 1 failed, 0 skipped") {
		t.Errorf("stdout:\n%s\nwant the totals", stdout)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			File  string `xml:"file,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &got); err != nil {
		t.Fatalf("report does not parse: %v\n%s", err, data)
	}
	if got.Tests != 4 || got.Failures != 1 || len(got.Suites) != 2 || got.Suites[0].Name != "passing" || got.Suites[1].File != fail {
		t.Fatalf("got %+v, want 2 suites, 4 tests, 1 failure\n%s", got, data)
	}
	c := got.Suites[1].Cases[0]
	if c.Name != "task 0 (line 8)" || c.Failure == nil || c.Failure.Message != "attempts: got 2, want 1" {
		t.Errorf("got case %+v, want task 0 failed with \"attempts: got 2, want 1\"", c)
	}
}

// TestScenarioServer runs a file twice against one shared callbin: the
// runs' bins do not collide, and the file's settings that a shared server
// keeps its own are named in notes.
func TestScenarioServer(t *testing.T) {
	m := MustRun(t, "-auth-token", "tok123", "-time-scale", "3600")
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass.yaml")
	os.WriteFile(pass, []byte(passingRun), 0o644)
	for i := 0; i < 2; i++ {
		code, stdout, stderr := scenarioCLI(t, map[string]string{"CALLBIN_AUTH_TOKEN": "tok123"}, "run", "--server", m.HTTPURL(), pass)
		if code != 0 {
			t.Fatalf("run %d: got exit code %d, want 0\n%s\n%s", i, code, stdout, stderr)
		}
		if !strings.Contains(stdout, "note: time_scale 3600 is not applied: the server's clock is used") {
			t.Errorf("run %d: stdout:\n%s\nwant a note on time_scale", i, stdout)
		}
	}
	code, stdout, _ := scenarioCLI(t, nil, "run", "--server", m.HTTPURL(), "--auth-token", "wrong", pass)
	if code != 1 || !strings.Contains(stdout, "401") {
		t.Errorf("with a wrong token: got exit code %d, want 1 and the 401 shown\n%s", code, stdout)
	}
}

// TestScenarioSeed runs the seeded flaky example twice: the same seed gives
// the same run (the file pins the exact sequence, so a second pass would
// fail on any drift).
func TestScenarioSeed(t *testing.T) {
	path := filepath.Join("..", "..", "scenarios", "examples", "run", "flaky-30.yaml")
	f, err := scenariorun.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Seed == 0 {
		t.Fatalf("%s has no seed", path)
	}
	var seqs []string
	for i := 0; i < 2; i++ {
		var out syncBuffer
		res := (&scenarioConfig{Stdout: &out, Stderr: &out}).runFile(context.Background(), f)
		if !res.Passed() {
			t.Fatalf("run %d failed:\n%s", i, out.String())
		}
		var b strings.Builder
		for _, c := range res.Observation.Bins["hook"] {
			b.WriteString(c.Result().String() + " ")
		}
		seqs = append(seqs, b.String())
	}
	if seqs[0] != seqs[1] || !strings.Contains(seqs[0], "500") {
		t.Errorf("got sequences %q and %q, want the same one, with failures in it", seqs[0], seqs[1])
	}
}
