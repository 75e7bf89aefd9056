package sender

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHostileReceivers: every misbehaving receiver ends as a recorded
// attempt with the right class, and a failed one keeps its schedule.
func TestHostileReceivers(t *testing.T) {
	clock := newFakeClock()
	// Long enough for a TLS handshake to fail on its own on a loaded
	// machine under -race, short enough for the receiver that never answers.
	e, log := MustEngine(t, func(e *Engine) { e.Clock = clock; e.CallbackTimeout = 3 * time.Second })
	api := MustAPI(t, e)

	hijack := func(tb testing.TB, w http.ResponseWriter) net.Conn {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			tb.Errorf("hijack: %v", err)
			return nil
		}
		return conn
	}
	huge := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10737418240") // 10 GiB
			w.WriteHeader(status)
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			for range 10240 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}
	}
	// Nothing listens on port 1 (tcpmux, long unused): a connection there
	// is refused. A port freed by the test could be taken by another
	// test process meanwhile.
	closedPort := func() string { return "http://127.0.0.1:1/hook" }

	tests := []struct {
		name    string
		handler http.HandlerFunc
		tls     bool
		url     string // instead of a server
		ok      bool
		class   string
		status  int
	}{
		{name: "never answers", handler: func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // lets the server notice the client leave
			select {
			case <-r.Context().Done():
			case <-time.After(testWait):
			}
		}, class: ClassTimeout},
		{name: "10 GiB body with 503", handler: huge(503), class: ClassHTTPStatus, status: 503},
		{name: "10 GiB body with 200", handler: huge(200), ok: true, status: 200},
		{name: "redirect", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, class: ClassRedirect, status: 302},
		{name: "404", handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, class: ClassHTTPStatus, status: 404},
		{name: "closes mid-reply", handler: func(w http.ResponseWriter, r *http.Request) {
			if c := hijack(t, w); c != nil {
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial"))
				c.Close()
			}
		}, class: ClassClosed, status: 200},
		{name: "closes without reply", handler: func(w http.ResponseWriter, r *http.Request) {
			if c := hijack(t, w); c != nil {
				c.Close()
			}
		}, class: ClassClosed},
		{name: "resets", handler: func(w http.ResponseWriter, r *http.Request) {
			if c := hijack(t, w); c != nil {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		}, class: ClassReset},
		{name: "not HTTP", handler: func(w http.ResponseWriter, r *http.Request) {
			if c := hijack(t, w); c != nil {
				c.Write([]byte("SSH-2.0-nope\r\n\r\n"))
				c.Close()
			}
		}, class: ClassNetwork},
		{name: "untrusted TLS", handler: func(w http.ResponseWriter, r *http.Request) {}, tls: true, class: ClassTLS},
		{name: "refused", url: closedPort(), class: ClassRefused},
	}
	policy := DefaultPolicy()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			if tc.handler != nil {
				srv := httptest.NewUnstartedServer(tc.handler)
				if tc.tls {
					srv.StartTLS()
				} else {
					srv.Start()
				}
				t.Cleanup(srv.Close)
				url = srv.URL + "/hook"
			}
			id := mustCall(t, "POST", api.URL+"/v1/task/categorization", categorization(url))["task_id"].(string)
			mustCall(t, "POST", api.URL+"/v1/task/"+id+"/complete", map[string]any{"response": map[string]any{"category": "red"}})
			ev := log.attempt(t, id, 1)
			if tc.ok {
				if ev.State != "succeeded" || ev.StatusCode != tc.status {
					t.Fatalf("attempt: got state %q status %d error %q, want succeeded %d", ev.State, ev.StatusCode, ev.Error, tc.status)
				}
			} else {
				if ev.State != "pending" || ev.ErrorClass != tc.class || ev.StatusCode != tc.status || ev.Error == "" {
					t.Fatalf("attempt: got state %q class %q status %d error %q, want pending %q %d with an error",
						ev.State, ev.ErrorClass, ev.StatusCode, ev.Error, tc.class, tc.status)
				}
				gap := ev.NextAttemptAt.Sub(ev.At)
				if lo, hi := time.Duration(float64(policy.Delays[0])*0.9), time.Duration(float64(policy.Delays[0])*1.1); gap < lo || gap > hi {
					t.Fatalf("next attempt: got %s after, want retry 1 of the schedule (%s ±10%%)", gap, policy.Delays[0])
				}
			}
			ds, err := e.Deliveries(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != 1 || len(ds[0].Attempts) != 1 {
				t.Fatalf("log: got %d deliveries, want 1 with 1 attempt", len(ds))
			}
			a := ds[0].Attempts[0]
			if a.InFlight || a.LatencyMS == nil || a.URL != url {
				t.Fatalf("logged attempt: got in_flight %v latency %v url %q, want finished with a latency at %q", a.InFlight, a.LatencyMS, a.URL, url)
			}
			if !tc.ok && (a.Error == nil || a.ErrorClass == nil || *a.ErrorClass != tc.class) {
				t.Fatalf("logged attempt: got error %v class %v, want class %q", a.Error, a.ErrorClass, tc.class)
			}
			if strings.HasPrefix(tc.name, "10 GiB") && len(a.ReplyBody) != replyKeep {
				t.Fatalf("logged reply body: got %d bytes, want the first %d", len(a.ReplyBody), replyKeep)
			}
			if *a.LatencyMS > 5000 {
				t.Fatalf("latency: got %.0f ms, want the attempt bounded by the 1 s timeout", *a.LatencyMS)
			}
		})
	}
	// The engine is unhurt: a good receiver still gets its callback.
	rc := MustReceiver(t, nil)
	id := mustCall(t, "POST", api.URL+"/v1/task/categorization", categorization(rc.URL))["task_id"].(string)
	mustCall(t, "POST", api.URL+"/v1/task/"+id+"/complete", map[string]any{"response": map[string]any{"category": "red"}})
	if !log.decided(t, id) {
		t.Fatal("after hostile receivers: got a failed callback to a good receiver, want success")
	}
}
