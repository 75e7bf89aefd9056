package run

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCallbin answers the part of the API a Runner uses, the way a callbin
// would, with knobs for the failures the real one cannot be made to show
// on demand. The end-to-end runs against a real callbin are in
// cmd/callbin (scenario_test.go).
type fakeCallbin struct {
	token     string
	binStatus int    // answer to bin creation; 0: 201
	taskBody  string // answer to task creation, with taskStatus; "": a task
	taskCode  int
	settle    bool // deliveries are decided; else pending for ever

	mu       sync.Mutex
	authErrs []string
	steps    []string
}

func (fc *fakeCallbin) serve(tb testing.TB) *httptest.Server {
	tb.Helper()
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	checkAuth := func(r *http.Request) {
		var ok bool
		switch user, _, found := r.BasicAuth(); {
		case strings.HasPrefix(r.URL.Path, "/v1/") && fc.token == "":
			ok = found && user != "" // any API key
		case strings.HasPrefix(r.URL.Path, "/v1/"):
			ok = found && user == fc.token
		case fc.token == "":
			ok = r.Header.Get("Authorization") == ""
		default:
			ok = r.Header.Get("Authorization") == "Bearer "+fc.token
		}
		if !ok {
			fc.mu.Lock()
			fc.authErrs = append(fc.authErrs, r.Method+" "+r.URL.Path+": "+r.Header.Get("Authorization"))
			fc.mu.Unlock()
		}
	}
	mux.HandleFunc("POST /api/v1/bins", func(w http.ResponseWriter, r *http.Request) {
		checkAuth(r)
		var req struct{ Name string }
		json.NewDecoder(r.Body).Decode(&req)
		if fc.binStatus != 0 {
			writeJSON(w, fc.binStatus, map[string]any{"error": map[string]string{"code": "internal", "message": "disk on fire"}})
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"name": req.Name, "url": "http://" + r.Host + "/b/" + req.Name, "email": req.Name + "@callbin.local"})
	})
	mux.HandleFunc("PUT /api/v1/bins/{bin}/scenario", func(w http.ResponseWriter, r *http.Request) {
		checkAuth(r)
		writeJSON(w, http.StatusOK, map[string]string{"name": r.PathValue("bin")})
	})
	mux.HandleFunc("GET /api/v1/bins/{bin}/captures", func(w http.ResponseWriter, r *http.Request) {
		checkAuth(r)
		writeJSON(w, http.StatusOK, map[string]any{"items": []any{}, "next": nil})
	})
	mux.HandleFunc("POST /v1/task/{type}", func(w http.ResponseWriter, r *http.Request) {
		checkAuth(r)
		if fc.taskBody != "" {
			w.WriteHeader(fc.taskCode)
			io.WriteString(w, fc.taskBody)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"task_id": "t1", "status": "pending"})
	})
	mux.HandleFunc("POST /v1/task/{id}/{action}", func(w http.ResponseWriter, r *http.Request) {
		checkAuth(r)
		body, _ := io.ReadAll(r.Body)
		fc.mu.Lock()
		fc.steps = append(fc.steps, r.PathValue("action")+" "+string(body))
		fc.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]string{"task_id": r.PathValue("id")})
	})
	mux.HandleFunc("GET /v1/task/{id}", func(w http.ResponseWriter, r *http.Request) {
		checkAuth(r)
		writeJSON(w, http.StatusOK, map[string]any{"task_id": r.PathValue("id"), "status": "completed"})
	})
	mux.HandleFunc("GET /v1/task/{id}/callbacks", func(w http.ResponseWriter, r *http.Request) {
		checkAuth(r)
		state := "pending"
		if fc.settle {
			state = "succeeded"
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": []map[string]any{{"id": 1, "event": "completed", "state": state, "attempts": []any{}}}})
	})
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	return srv
}

const simpleRun = `name: simple
bins:
  hook: {scenario: ok}
tasks:
  - type: generic
    callback_url: "{{bins.hook.url}}"
    steps:
      - complete: {x: "{{bins.hook.name}}"}
      - recall
expect:
  - {task: 0, attempts: 0}
timeout: 1s
`

func TestRunTimesOut(t *testing.T) {
	fc := &fakeCallbin{token: "sekret"}
	srv := fc.serve(t)
	var out bytes.Buffer
	r := &Runner{BaseURL: srv.URL, Token: "sekret", Out: &out, Prefix: "p-", Poll: 10 * time.Millisecond}
	start := time.Now()
	res := r.Run(context.Background(), MustParse(t, simpleRun))
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("got the run back after %s, want it bounded by its 1s timeout", elapsed)
	}
	if !errors.Is(res.Err, ErrTimeout) || res.Passed() {
		t.Errorf("got error %v, passed %t; want ErrTimeout and not passed", res.Err, res.Passed())
	}
	if len(res.Checks) != 1 || res.Checks[0].Passed() || !strings.Contains(res.Checks[0].Failures[0], "not decided before the run's timeout") {
		t.Errorf("got checks %+v, want the expectation failed as undecided", res.Checks)
	}
	if len(fc.authErrs) > 0 {
		t.Errorf("got requests without the token: %q", fc.authErrs)
	}
	if len(fc.steps) != 0 {
		t.Errorf("got steps %q, want none taken while the creation callback is undecided", fc.steps)
	}
	for _, want := range []string{"=== RUN   simple", "note: no live stream", "bin hook = http://" + srv.Listener.Addr().String() + "/b/p-hook (library ok)",
		"task 0: created t1", "FAIL  task 0 (line 11)", "--- ERROR: simple"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not hold %q:\n%s", want, out.String())
		}
	}
}

func TestRunSteps(t *testing.T) {
	fc := &fakeCallbin{settle: true}
	srv := fc.serve(t)
	var out bytes.Buffer
	res := (&Runner{BaseURL: srv.URL, Out: &out, Prefix: "p-"}).Run(context.Background(), MustParse(t, simpleRun))
	if res.Err != nil || !res.Passed() {
		t.Fatalf("got error %v, passed %t, want a passed run\n%s", res.Err, res.Passed(), out.String())
	}
	want := []string{`complete {"response":{"x":"p-hook"}}`, "recall "}
	if strings.Join(fc.steps, "|") != strings.Join(want, "|") {
		t.Errorf("got steps %q, want %q (templates expanded in bodies)", fc.steps, want)
	}
	if len(fc.authErrs) != 0 {
		t.Errorf("without a token: got %q, want basic auth with a placeholder key on /v1 and nothing on /api", fc.authErrs)
	}
	if !strings.Contains(out.String(), "--- PASS: simple (1 of 1 expectations met") {
		t.Errorf("output:\n%s\nwant a PASS line", out.String())
	}
}

func TestRunSetupErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		fc   *fakeCallbin
		want string
	}{
		{"bin refused", &fakeCallbin{binStatus: 500}, "bin hook: POST /api/v1/bins: 500 disk on fire"},
		{"task refused", &fakeCallbin{taskCode: 400, taskBody: `{"status_code":400,"error":"params: bad"}`}, "task 0: create: POST /v1/task/generic: 400 params: bad"},
		{"answer not JSON", &fakeCallbin{taskCode: 200, taskBody: `<html>`}, "answer is not the JSON expected"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.fc.serve(t)
			var out bytes.Buffer
			res := (&Runner{BaseURL: srv.URL, Out: &out}).Run(context.Background(), MustParse(t, simpleRun))
			if res.Err == nil || !strings.Contains(res.Err.Error(), tt.want) || res.Passed() {
				t.Errorf("got error %v, passed %t; want an error holding %q\n%s", res.Err, res.Passed(), tt.want, out.String())
			}
		})
	}
}

func TestRunErrorTask(t *testing.T) {
	// A refused creation that stored a task in status error goes on: its
	// error callback is what the run is about.
	fc := &fakeCallbin{settle: true, taskCode: 400, taskBody: `{"status_code":400,"error":"categories: required","task_id":"t9"}`}
	srv := fc.serve(t)
	var out bytes.Buffer
	f := MustParse(t, "bins: {hook: }\ntasks: [{type: categorization, callback_url: '{{bins.hook.url}}'}]\nexpect: [{task: 0, attempts: 0}]\n")
	res := (&Runner{BaseURL: srv.URL, Out: &out}).Run(context.Background(), f)
	if res.Err != nil || !res.Passed() || res.Observation.Tasks[0].ID != "t9" {
		t.Errorf("got error %v, passed %t, task %q; want the error task t9 followed\n%s", res.Err, res.Passed(), res.Observation.Tasks[0].ID, out.String())
	}
	if !strings.Contains(out.String(), "created t9 in status error: categories: required") {
		t.Errorf("output:\n%s\nwant the error task named", out.String())
	}
}

func TestRunCanceled(t *testing.T) {
	fc := &fakeCallbin{}
	srv := fc.serve(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	f := MustParse(t, strings.Replace(simpleRun, "timeout: 1s", "timeout: 30s", 1))
	start := time.Now()
	res := (&Runner{BaseURL: srv.URL}).Run(ctx, f)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("got the run back %s after its context ended, want it at once", elapsed)
	}
	if res.Passed() {
		t.Errorf("got a passed run, want it not passed after a cancel")
	}
}

func TestSharedNotes(t *testing.T) {
	f := MustParse(t, "time_scale: 3600\ncallback_timeout: 1s\nseed: 3\nbins: {hook: }\nexpect: [{bin: hook, captures: 0}]\n")
	notes := strings.Join(sharedNotes(f), "\n")
	for _, want := range []string{"time_scale 3600 is not applied", "callback_timeout 1s is not applied", "seed 3 is not applied"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q: want %q", notes, want)
		}
	}
	if n := sharedNotes(MustParse(t, "bins: {hook: }\nexpect: [{bin: hook, captures: 0}]\n")); len(n) != 0 {
		t.Errorf("got notes %q for a file that sets nothing, want none", n)
	}
}
