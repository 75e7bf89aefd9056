package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
)

// testWait bounds every wait in these tests (real time).
const testWait = 10 * time.Second

// eventLog is a Publisher that keeps every event and lets tests wait.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	notify chan struct{}
}

func newEventLog() *eventLog { return &eventLog{notify: make(chan struct{}, 1)} }

func (l *eventLog) Publish(ev Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// waitFor returns the first event (from index *from on) matching ok.
func (l *eventLog) waitFor(tb testing.TB, what string, ok func(Event) bool) Event {
	tb.Helper()
	deadline := time.NewTimer(testWait)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for _, ev := range l.events {
			if ok(ev) {
				l.mu.Unlock()
				return ev
			}
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-deadline.C:
			tb.Fatalf("waited %s for %s: got no such event", testWait, what)
		}
	}
}

func (l *eventLog) attempt(tb testing.TB, taskID string, n int) Event {
	tb.Helper()
	return l.waitFor(tb, "attempt "+itoa(n)+" of task "+taskID, func(ev Event) bool {
		return ev.Type == EventTypeAttempt && ev.TaskID == taskID && ev.Attempt == n
	})
}

// decided waits for the task event that sets callback_succeeded.
func (l *eventLog) decided(tb testing.TB, taskID string) bool {
	tb.Helper()
	ev := l.waitFor(tb, "callback decision of task "+taskID, func(ev Event) bool {
		return ev.Type == EventTypeTask && ev.TaskID == taskID && ev.CallbackSucceeded != nil
	})
	return *ev.CallbackSucceeded
}

func (l *eventLog) count(match func(Event) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.events {
		if match(ev) {
			n++
		}
	}
	return n
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// MustEngine opens an engine on a database file in a temp dir; configure
// may set fields before Open. It is closed at cleanup.
func MustEngine(tb testing.TB, configure func(*Engine)) (*Engine, *eventLog) {
	tb.Helper()
	log := newEventLog()
	e := &Engine{Path: filepath.Join(tb.TempDir(), "sender.db"), Events: log, CallbackTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(testLogOut(), nil))}
	if configure != nil {
		configure(e)
	}
	if err := e.Open(); err != nil {
		tb.Fatalf("open engine: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			tb.Errorf("close engine: %v", err)
		}
	})
	return e, log
}

// MustAPI serves e's routes on 127.0.0.1:0.
func MustAPI(tb testing.TB, e *Engine) *httptest.Server {
	tb.Helper()
	r := mux.NewRouter()
	e.Register(r)
	srv := httptest.NewServer(r)
	tb.Cleanup(srv.Close)
	return srv
}

// received is one request a receiver got.
type received struct {
	Header http.Header
	Body   []byte
}

// receiver is a callback receiver on 127.0.0.1:0 that records requests and
// answers with reply(n) for the n-th request (1-based).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
	got  chan struct{}
}

func MustReceiver(tb testing.TB, reply func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	tb.Helper()
	rc := &receiver{got: make(chan struct{}, 1)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{Header: r.Header.Clone(), Body: body})
		n := len(rc.reqs)
		rc.mu.Unlock()
		select {
		case rc.got <- struct{}{}:
		default:
		}
		if reply == nil {
			w.Write([]byte(`{"ok":true}`))
			return
		}
		reply(n, w, r)
	}))
	tb.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// waitRequests waits until the receiver has got n requests.
func (rc *receiver) waitRequests(tb testing.TB, n int) []received {
	tb.Helper()
	deadline := time.NewTimer(testWait)
	defer deadline.Stop()
	for {
		if r := rc.requests(); len(r) >= n {
			return r
		}
		select {
		case <-rc.got:
		case <-deadline.C:
			tb.Fatalf("receiver: got %d requests, want %d", len(rc.requests()), n)
		}
	}
}

// call makes an API request with basic auth and decodes the JSON reply.
func call(tb testing.TB, method, url string, body any) (int, map[string]any) {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.SetBasicAuth("test_key", "")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		tb.Fatalf("%s %s: reply %d is not a JSON object: %q", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// mustCall is call that requires a 200.
func mustCall(tb testing.TB, method, url string, body any) map[string]any {
	tb.Helper()
	status, out := call(tb, method, url, body)
	if status != http.StatusOK {
		tb.Fatalf("%s %s: got status %d (%v), want 200", method, url, status, out)
	}
	return out
}

func categorization(callback string) map[string]any {
	return map[string]any{
		"callback_url":    callback,
		"instruction":     "Which colour?",
		"attachment_type": "text",
		"attachment":      "a red apple",
		"categories":      []string{"red", "green"},
	}
}

// fakeClock is a Clock moved by hand.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clock *fakeClock
	c     chan time.Time
	at    time.Time
	done  bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, c: make(chan time.Time, 1), at: c.now.Add(d)}
	if d <= 0 {
		t.c <- c.now
		t.done = true
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// waitTrue polls cond every millisecond for at most 10 s.
func waitTrue(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: still not true after 10s", what)
		}
	}
}

// armed reports whether a timer waits for exactly t, that is, whether
// whoever asked for it is parked on it (or about to be).
func (c *fakeClock) armed(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, tm := range c.timers {
		if !tm.done && tm.at.Equal(t) {
			return true
		}
	}
	return false
}

// Set moves the clock to t (never backwards) and fires due timers.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	keep := c.timers[:0]
	for _, tm := range c.timers {
		if tm.done {
			continue
		}
		if !tm.at.After(c.now) {
			tm.done = true
			tm.c <- c.now
			continue
		}
		keep = append(keep, tm)
	}
	c.timers = keep
}

// testLogOut receives engine logs in tests: CALLBIN_TEST_LOG=1 shows them.
func testLogOut() io.Writer {
	if os.Getenv("CALLBIN_TEST_LOG") != "" {
		return os.Stderr
	}
	return io.Discard
}
