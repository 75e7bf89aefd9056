package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callbin/callbin/inbox"
)

func putScenario(tb testing.TB, srv *Server, bin, script string) {
	tb.Helper()
	if status, body := do(tb, "PUT", srv.URL+"/api/v1/bins/"+bin+"/scenario", []byte(script)); status != 200 {
		tb.Fatalf("put scenario: got %d %s", status, body)
	}
}

// Each fault, as a real net/http client sees it, and as the capture
// records it.
func TestScriptedFaults(t *testing.T) {
	srv := MustServe(t, &inbox.Handler{SlowInterval: 20 * time.Millisecond})
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	post := func(bin string) (*http.Response, []byte, error) {
		resp, err := client.Post(srv.URL+"/b/"+bin, "text/plain", strings.NewReader("payload"))
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	stored := func(bin string) inbox.Reply {
		t.Helper()
		c, err := srv.Store.WaitCapture(context.Background(), inbox.CaptureFilter{Bin: bin})
		if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		if string(c.Body) != "payload" {
			t.Errorf("%s: stored body %q", bin, c.Body)
		}
		return c.Reply
	}

	putScenario(t, srv, "reset", "steps: [{fault: reset}]")
	_, _, err := post("reset")
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reset: got %v, want connection reset", err)
	}
	if r := stored("reset"); r.Fault != "reset" || r.Status != 0 {
		t.Errorf("reset: recorded %+v", r)
	}

	putScenario(t, srv, "close", "steps: [{fault: close}]")
	_, _, err = post("close")
	if err == nil || !(errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("close: got %v, want EOF", err)
	}
	if r := stored("close"); r.Fault != "close" {
		t.Errorf("close: recorded %+v", r)
	}

	putScenario(t, srv, "garbage", "steps: [{fault: garbage}]")
	_, _, err = post("garbage")
	if err == nil || !strings.Contains(err.Error(), "malformed HTTP") {
		t.Errorf("garbage: got %v, want a malformed response", err)
	}
	if r := stored("garbage"); r.Fault != "garbage" {
		t.Errorf("garbage: recorded %+v", r)
	}

	putScenario(t, srv, "hang", "steps: [{fault: hang}]")
	short := &http.Client{Timeout: 300 * time.Millisecond}
	start := time.Now()
	_, err = short.Post(srv.URL+"/b/hang", "text/plain", strings.NewReader("payload"))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) < 250*time.Millisecond {
		t.Errorf("hang: got %v after %s, want a client timeout", err, time.Since(start))
	}
	if r := stored("hang"); r.Fault != "hang" {
		t.Errorf("hang: recorded %+v", r)
	}

	putScenario(t, srv, "slow", `steps: [{fault: slow, status: 202, body: "abcdef"}]`)
	start = time.Now()
	resp, body, err := post("slow")
	if err != nil || resp.StatusCode != 202 || string(body) != "abcdef" || time.Since(start) < 100*time.Millisecond {
		t.Errorf("slow: got %v %q %v after %s, want 202 abcdef dribbled", resp, body, err, time.Since(start))
	}
	if r := stored("slow"); r.Fault != "slow" || r.Status != 202 {
		t.Errorf("slow: recorded %+v", r)
	}

	putScenario(t, srv, "limit", `steps: [{status: 429, headers: {Retry-After: "7"}, body: "slow down"}]`)
	resp, body, err = post("limit")
	if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" || string(body) != "slow down" ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("429: got %v %q %v", resp, body, err)
	}
	if r := stored("limit"); r.Status != 429 {
		t.Errorf("429: recorded %+v", r)
	}
}

// A delayed reply is stored before the delay runs, and does not hold up
// other requests.
func TestScriptedDelay(t *testing.T) {
	srv := MustServe(t, nil)
	putScenario(t, srv, "late", "steps: [{status: 201, delay: 4s}]")
	done := make(chan int, 1)
	go func() {
		resp, err := http.Post(srv.URL+"/b/late", "text/plain", strings.NewReader("x"))
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	// Bounds well inside the 4 s delay, with room for a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := srv.Store.WaitCapture(ctx, inbox.CaptureFilter{Bin: "late"}); err != nil {
		t.Fatalf("the capture was not stored before the delay ran: %v", err)
	}
	start := time.Now()
	if status, _ := do(t, "POST", srv.URL+"/b/other", []byte("y")); status != 200 || time.Since(start) > 2*time.Second {
		t.Errorf("another bin waited %s behind the delay", time.Since(start))
	}
	select {
	case status := <-done:
		if status != 201 {
			t.Errorf("got %d, want 201 after the delay", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the delayed reply never came")
	}
}

func TestScenarioAPI(t *testing.T) {
	srv := MustServe(t, nil)
	// A ready scenario by name, then the sequence it gives.
	putScenario(t, srv, "seq", "fail-3-then-ok")
	var got []int
	for i := 0; i < 5; i++ {
		status, _ := do(t, "POST", srv.URL+"/b/seq", nil)
		got = append(got, status)
	}
	if want := "[500 500 500 200 200]"; fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
	// Reset starts again from the first step.
	if status, body := do(t, "POST", srv.URL+"/api/v1/bins/seq/scenario/reset", nil); status != 200 {
		t.Fatalf("reset: got %d %s", status, body)
	}
	if status, _ := do(t, "POST", srv.URL+"/b/seq", nil); status != 500 {
		t.Errorf("after reset: got %d, want 500", status)
	}
	// The bin shows its script; DELETE goes back to the default reply.
	_, body := do(t, "GET", srv.URL+"/api/v1/bins/seq", nil)
	if !strings.Contains(string(body), `"scenario":{"name":"fail-3-then-ok"`) {
		t.Errorf("bin: got %s", body)
	}
	if status, body := do(t, "DELETE", srv.URL+"/api/v1/bins/seq/scenario", nil); status != 200 || !strings.Contains(string(body), `"scenario":null`) {
		t.Errorf("delete: got %d %s", status, body)
	}
	if status, _ := do(t, "POST", srv.URL+"/b/seq", nil); status != 200 {
		t.Errorf("after delete: got %d, want 200", status)
	}
	// A bad script is refused with its line and field.
	status, body := do(t, "PUT", srv.URL+"/api/v1/bins/seq/scenario", []byte("steps:\n  - status: 200\n  - status: 99\n"))
	var e struct {
		Error struct {
			Code, Message, Field string
			Line                 int
		}
	}
	mustJSON(t, body, &e)
	if status != 400 || e.Error.Code != "invalid_scenario" || e.Error.Line != 3 || e.Error.Field != "steps[1].status" {
		t.Errorf("bad script: got %d %s", status, body)
	}
	for _, bad := range []string{"no-such-scenario", "steps: []", "steps: [{status: 200, colour: red}]", "{", ""} {
		if status, body := do(t, "PUT", srv.URL+"/api/v1/bins/seq/scenario", []byte(bad)); status != 400 {
			t.Errorf("%q: got %d %s, want 400", bad, status, body)
		}
	}
	// Created with a script, as JSON.
	status, body = do(t, "POST", srv.URL+"/api/v1/bins", []byte(`{"name":"made","scenario":{"steps":[{"status":418}]}}`))
	if status != 201 {
		t.Fatalf("create: got %d %s", status, body)
	}
	if status, _ := do(t, "POST", srv.URL+"/b/made", nil); status != 418 {
		t.Errorf("created with a script: got %d, want 418", status)
	}
	if status, _ := do(t, "POST", srv.URL+"/api/v1/bins/nobin/scenario/reset", nil); status != 404 {
		t.Errorf("reset of an unknown bin: got %d, want 404", status)
	}
}
