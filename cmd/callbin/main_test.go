package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/gorilla/websocket"
)

// MustRun opens a callbin on free loopback ports with its data in a fresh
// folder, configured by args, and closes it at the end of the test.
func MustRun(tb testing.TB, args ...string) *Main {
	tb.Helper()
	m := NewMain()
	m.Stderr = io.Discard
	args = append([]string{"-http", "127.0.0.1:0", "-smtp", "127.0.0.1:0", "-data", filepath.Join(tb.TempDir(), "data")}, args...)
	if err := m.ParseFlags(args, func(string) string { return "" }); err != nil {
		tb.Fatal(err)
	}
	if err := m.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			tb.Error(err)
		}
	})
	return m
}

func get(tb testing.TB, url string, headers ...string) (int, []byte) {
	tb.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestHelp: callbin help prints the commands and every flag of serve; an
// unknown command prints them too, on stderr, and exits 2.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("help: exit %d", code)
	}
	for _, want := range []string{"callbin trigger", "-time-scale", "-retry-policy", "-smtp-relay"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"bogus"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), `unknown command "bogus"`) || !strings.Contains(stderr.String(), "-time-scale") {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr.String())
	}
}

func TestParseFlags(t *testing.T) {
	env := map[string]string{"CALLBIN_HTTP": "127.0.0.1:9999", "CALLBIN_MAX_BODY": "1MiB", "CALLBIN_RETENTION": "1h"}
	m := NewMain()
	if err := m.ParseFlags([]string{"-http", "127.0.0.1:7777"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if m.HTTPAddr != "127.0.0.1:7777" || m.MaxBody != 1<<20 || m.Retention != time.Hour {
		t.Errorf("got http %s max-body %d retention %s", m.HTTPAddr, m.MaxBody, m.Retention)
	}
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-max-body", "lots"}, nil, "max-body"},
		{[]string{"-max-body", "0"}, nil, "max-body"},
		{[]string{"-log-format", "xml"}, nil, "log-format"},
		{[]string{"-retention", "-1h"}, nil, "retention"},
		{[]string{"-nope"}, nil, "nope"},
		{[]string{"stray"}, nil, "stray"},
		{nil, map[string]string{"CALLBIN_MAX_BODY": "-5"}, "CALLBIN_MAX_BODY"},
		{[]string{"-time-scale", "NaN"}, nil, "time-scale"},
		{[]string{"-time-scale", "0.5"}, nil, "time-scale"},
		{[]string{"-smtp-relay", "127.0.0.1:99999"}, nil, "99999"},
		{[]string{"-smtp-relay", "nohostport"}, nil, "smtp-relay"},
	} {
		err := NewMain().ParseFlags(tt.args, func(k string) string { return tt.env[k] })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v %v: got %v, want an error naming %s", tt.args, tt.env, err, tt.want)
		}
	}
	for _, tt := range []struct {
		in   string
		want int64
	}{{"1048576", 1 << 20}, {"512KiB", 512 << 10}, {"10MiB", 10 << 20}, {"1GB", 1e9}, {"2 MiB", 2 << 20}} {
		if got, err := parseSize(tt.in); err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	m := NewMain()
	m.Stderr = io.Discard
	if err := m.ParseFlags([]string{"-http", "127.0.0.1:0", "-smtp", "127.0.0.1:0", "-data", t.TempDir()}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	select {
	case <-m.Started():
	case err := <-done:
		t.Fatalf("Run ended before it started: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not start")
	}
	if status, body := get(t, m.HTTPURL()+"/healthz"); status != 200 {
		t.Fatalf("healthz: got %d %s", status, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// The default data folder is relative to the working directory.
func TestRelativeDataFolder(t *testing.T) {
	t.Chdir(t.TempDir())
	m := NewMain()
	m.Stderr = io.Discard
	if err := m.ParseFlags([]string{"-http", "127.0.0.1:0", "-smtp", "127.0.0.1:0"}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	resp, err := http.Post(m.HTTPURL()+"/b/rel", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, f := range []string{"callbin-data/inbox.db", "callbin-data/sender.db"} {
		if _, err := os.Stat(f); err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: %v (capture: %d)", f, err, resp.StatusCode)
		}
	}
}

func TestBusyPortIsAnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m := NewMain()
	m.Stderr = io.Discard
	m.ParseFlags([]string{"-http", ln.Addr().String(), "-smtp", "127.0.0.1:0", "-data", t.TempDir()}, func(string) string { return "" })
	if err := m.Open(); err == nil {
		m.Close(context.Background())
		t.Fatal("got no error on a busy port")
	}
}

func TestEndToEnd(t *testing.T) {
	m := MustRun(t)
	base := m.HTTPURL()
	resp, err := http.Post(base+"/b/e2e/hook?x=1", "application/json", strings.NewReader(`{"hello":"world"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("capture: got %d", resp.StatusCode)
	}
	status, body := get(t, base+"/api/v1/bins/e2e/captures")
	if status != 200 || !strings.Contains(string(body), `"path":"/b/e2e/hook"`) {
		t.Errorf("captures: got %d %s", status, body)
	}
	status, body = get(t, base+"/metrics")
	if status != 200 || !regexp.MustCompile(`callbin_captures_total\{kind="http"\} 1\b`).Match(body) ||
		!strings.Contains(string(body), "callbin_capture_duration_seconds_bucket") ||
		!strings.Contains(string(body), "callbin_capture_batch_size_bucket") {
		t.Errorf("metrics: got %d, want the capture counter at 1 and both histograms", status)
	}
	for _, path := range []string{"/nope", "/api/v1/nope", "/api/v1/bins/e2e/captures/1/nope"} {
		status, body = get(t, base+path)
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(body, &e) != nil || status != 404 || e.Error.Code != "not_found" {
			t.Errorf("%s: got %d %s, want a JSON 404", path, status, body)
		}
	}
}

// The stream's ?bin= filter takes a bin name as the API does: in any case,
// live and on resume; a name no bin can have is refused with a 400.
func TestStreamBinFilterIgnoresCase(t *testing.T) {
	m := MustRun(t)
	base := m.HTTPURL()
	ws := "ws" + strings.TrimPrefix(base, "http") + "/api/v1/stream"
	post := func(path string) {
		t.Helper()
		resp, err := http.Post(base+path, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	read := func(conn *websocket.Conn) map[string]any {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var ev map[string]any
		if err := conn.ReadJSON(&ev); err != nil {
			t.Fatalf("read event: %v", err)
		}
		return ev
	}

	post("/b/hook/first")
	live, _, err := websocket.DefaultDialer.Dial(ws+"?bin=HooK", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	post("/b/other/x")
	post("/b/HOOK/second")
	if ev := read(live); ev["type"] != "capture" || ev["bin"] != "hook" || ev["path"] != "/b/HOOK/second" {
		t.Errorf("live with ?bin=HooK: got %v, want the capture of /b/HOOK/second in bin hook", ev)
	}

	resumed, _, err := websocket.DefaultDialer.Dial(ws+"?bin=HOOK&since=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	for _, want := range []string{"/b/hook/first", "/b/HOOK/second"} { // paths as sent
		if ev := read(resumed); ev["path"] != want {
			t.Errorf("resume with ?bin=HOOK: got %v, want the capture of %s", ev, want)
		}
	}

	_, resp, err := websocket.DefaultDialer.Dial(ws+"?bin=bad%20name", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("?bin=bad%%20name: got %v (status %d), want a 400", err, status)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "only letters, digits") {
		t.Errorf("?bin=bad%%20name: got %s, want the reason", body)
	}
}

// A method a route does not take gets a JSON 405 that lists in Allow the
// ones it does, on the bins API, the stream and the UI alike; a GET on an
// API route is never taken by the UI's catch-all.
func TestMethodNotAllowedSaysWhatIs(t *testing.T) {
	m := MustRun(t)
	base := m.HTTPURL()
	for _, tt := range []struct {
		method, path, allow string
	}{
		{"DELETE", "/api/v1/bins", "GET, POST"},
		{"PATCH", "/api/v1/bins/hook", "GET, DELETE"},
		{"PUT", "/api/v1/bins/hook/captures", "GET, DELETE"},
		{"GET", "/api/v1/bins/hook/scenario/reset", "POST"},
		{"GET", "/api/v1/bins/hook/scenario", "PUT, DELETE"},
		{"POST", "/api/v1/stream", "GET"},
		{"POST", "/bins/hook", "GET, HEAD"},
	} {
		req, _ := http.NewRequest(tt.method, base+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Error struct{ Code string } }
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != tt.allow || json.Unmarshal(body, &e) != nil || e.Error.Code != "method_not_allowed" {
			t.Errorf("%s %s: got %d, Allow %q, %s; want a JSON 405 with Allow %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), body, tt.allow)
		}
	}
	if status, body := get(t, base+"/api/v1/nope"); status != 404 || !strings.Contains(string(body), "not_found") {
		t.Errorf("GET /api/v1/nope: got %d %s, want a JSON 404", status, body)
	}
	if status, body := get(t, base+"/bins/hook"); status != 200 || !strings.Contains(string(body), "<html") {
		t.Errorf("GET /bins/hook: got %d, want the UI's page", status)
	}
}

// An e-mail to the built-in SMTP sink is a capture of its bin.
func TestEmailCapture(t *testing.T) {
	m := MustRun(t)
	err := smtp.SendMail(m.SMTP.ListenAddr(), nil, "sender@example.test", []string{"Mailbin@example.test"},
		[]byte("From: sender@example.test\r\nTo: mailbin@example.test\r\nSubject: hello\r\n\r\nbody text\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	status, body := get(t, m.HTTPURL()+"/api/v1/bins/mailbin/captures?kind=email")
	if status != 200 || !strings.Contains(string(body), `"subject":"hello"`) {
		t.Errorf("got %d %s", status, body)
	}
}

func TestAuthToken(t *testing.T) {
	m := MustRun(t, "-auth-token", "s3cret")
	base := m.HTTPURL()
	for _, tt := range []struct {
		path    string
		headers []string
		want    int
	}{
		{"/api/v1/bins", nil, 401},
		{"/api/v1/bins", []string{"Authorization", "Bearer wrong"}, 401},
		{"/api/v1/bins", []string{"Authorization", "Bearer s3cret"}, 200},
		{"/api/v1/bins?access_token=s3cret", nil, 200},
		{"/metrics", nil, 401},
		{"/api/openapi.json", nil, 401},
		{"/v1/tasks", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("wrong:"))}, 401},
		{"/v1/tasks", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("s3cret:"))}, 200},
		{"/api/v1/stream", nil, 401},
		{"/", nil, 200}, // the UI's shell holds no data
		{"/healthz", nil, 200},
		{"/b/open", nil, 200}, // capture endpoints stay open
	} {
		if status, body := get(t, base+tt.path, tt.headers...); status != tt.want {
			t.Errorf("%s %v: got %d %s, want %d", tt.path, tt.headers, status, body, tt.want)
		}
	}
}

// A client that sends its request head slowly (slowloris) is cut off.
func TestSlowClientIsCutOff(t *testing.T) {
	m := NewMain()
	m.Stderr = io.Discard
	m.ParseFlags([]string{"-http", "127.0.0.1:0", "-smtp", "127.0.0.1:0", "-data", t.TempDir()}, func(string) string { return "" })
	m.ReadHeaderTimeout = 300 * time.Millisecond
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	conn, err := net.Dial("tcp", strings.TrimPrefix(m.HTTPURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /b/slow HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	buf := make([]byte, 512)
	for {
		if _, err := conn.Read(buf); err != nil {
			break
		}
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("the connection stayed open %s, want it closed after the head timeout", el)
	}
	// The server still serves others.
	if status, _ := get(t, m.HTTPURL()+"/healthz"); status != 200 {
		t.Errorf("healthz after a slow client: got %d", status)
	}
}

// Every route the router serves is described in /api/openapi.json, with
// its methods.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	m := MustRun(t)
	status, body := get(t, m.HTTPURL()+"/api/openapi.json")
	if status != 200 {
		t.Fatalf("got %d", status)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("got openapi %q, want 3.x", doc.OpenAPI)
	}
	routes := 0
	err := m.Router.Walk(func(route *mux.Route, router *mux.Router, ancestors []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
		}
		paths := []string{tpl}
		switch tpl {
		case "/b/": // the capture prefix: /b/{bin} and /b/{bin}/{path}
			paths = []string{"/b/{bin}", "/b/{bin}/{path}"}
		case "/v1/task/{type}", "/v1/task/{task_id}": // one path in OpenAPI terms
			paths = []string{"/v1/task/{id}"}
		case "/v1/": // answers every other /v1 path with the task API's errors
			return nil
		}
		for _, p := range paths {
			for _, method := range methods {
				routes++
				if _, ok := doc.Paths[p][strings.ToLower(method)]; !ok {
					t.Errorf("route %s %s is missing from the OpenAPI document", method, p)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if routes < 20 {
		t.Errorf("walked %d routes, want the whole API", routes)
	}
}

func TestHelpAndVersion(t *testing.T) {
	var stderr bytes.Buffer
	m := NewMain()
	m.Stderr = &stderr
	if err := m.ParseFlags([]string{"-help"}, func(string) string { return "" }); err != errHelp {
		t.Fatalf("got %v, want errHelp", err)
	}
	for _, want := range []string{"-http", "-data", "-max-body", "-auth-token", "CALLBIN_"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help does not mention %s:\n%s", want, stderr.String())
		}
	}
	if Version() == "" {
		t.Error("empty version")
	}
}

// TestTaskAPIRouting: /v1 paths that are no route, and routes called with
// the wrong method, answer in the task API's own error shape ({status_code,
// error}), not the UI's or the bins' API's; GET routes also take HEAD; a
// task id is unescaped before it is looked up or quoted.
func TestTaskAPIRouting(t *testing.T) {
	m := MustRun(t)
	base := m.HTTPURL()
	for _, tc := range []struct {
		method, path string
		status       int
		allow, want  string
	}{
		{"POST", "/v1/nothing", 404, "", "no route for POST /v1/nothing"},
		{"GET", "/v1/nothing", 404, "", "no route for GET /v1/nothing"},
		{"DELETE", "/v1/task/", 404, "", "no route"},
		{"GET", "/v1/task/abc/complete", 405, "POST", "GET is not allowed on /v1/task/abc/complete; use POST"},
		{"POST", "/v1/tasks", 405, "GET, HEAD", "use GET or HEAD"},
		{"PUT", "/v1/task/generic", 405, "GET, HEAD, POST", "PUT is not allowed"},
		{"GET", "/v1/task/%E2%98%83", 404, "", `task "☃"`},
		{"HEAD", "/v1/tasks?limit=1", 200, "", ""},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		req.SetBasicAuth("key", "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: got %d, Allow %q; want %d, Allow %q (%s)", tc.method, tc.path, resp.StatusCode,
				resp.Header.Get("Allow"), tc.status, tc.allow, raw)
			continue
		}
		if tc.want == "" {
			continue
		}
		var body struct {
			StatusCode int    `json:"status_code"`
			Error      string `json:"error"`
		}
		if err := json.Unmarshal(raw, &body); err != nil || body.StatusCode != tc.status || !strings.Contains(body.Error, tc.want) {
			t.Errorf("%s %s: got %s, want {status_code: %d, error: ...%s...}", tc.method, tc.path, raw, tc.status, tc.want)
		}
	}
}
