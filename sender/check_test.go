package sender

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// verdicts maps each check's name to its verdict.
func verdicts(results []CheckResult) map[string]string {
	m := map[string]string{}
	for _, r := range results {
		m[r.Name] = r.Verdict
	}
	return m
}

func TestCheckStrictHandler(t *testing.T) {
	secret := NewSigningSecret()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	handled := 0
	strict := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get(HeaderAuth) != "the-key" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if id := r.Header.Get(HeaderWebhookID); !seen[id] {
			seen[id] = true
			handled++
		}
	}))
	defer strict.Close()
	results, err := Check(t.Context(), strict.URL, CheckOptions{AuthKey: "the-key", SigningSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Verdict != CheckPass {
			t.Errorf("%s: %s (%s), want pass", r.Name, r.Verdict, r.Detail)
		}
	}
	if len(results) != 12 {
		t.Errorf("got %d checks, want 12", len(results))
	}
	// Every callback reached it; the duplicate was acted on once.
	if handled != 10 {
		t.Errorf("the handler acted on %d distinct deliveries, want 10", handled)
	}
}

func TestCheckNaiveAndFragileHandlers(t *testing.T) {
	naive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer naive.Close()
	results, err := Check(t.Context(), naive.URL, CheckOptions{AuthKey: "k", SigningSecret: NewSigningSecret()})
	if err != nil {
		t.Fatal(err)
	}
	v := verdicts(results)
	for name, want := range map[string]string{
		"missing auth key refused":                   CheckFail,
		"wrong auth key refused":                     CheckFail,
		"bad signature refused":                      CheckFail,
		"completed callback accepted":                CheckPass,
		"duplicate delivery acknowledged both times": CheckPass,
		"answers quickly":                            CheckPass,
	} {
		if v[name] != want {
			t.Errorf("naive handler, %s: got %q, want %q", name, v[name], want)
		}
	}

	// Fragile: it knows only tasks it saw completed, refuses fields it does
	// not know, refuses a missing key with a 500, and takes its time.
	var mu sync.Mutex
	completed := map[string]bool{}
	fragile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(250 * time.Millisecond)
		if r.Header.Get(HeaderAuth) == "" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var p struct {
			TaskID   string          `json:"task_id"`
			Status   string          `json:"status"`
			Response json.RawMessage `json:"response"`
			Task     Task            `json:"task"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if p.Status == StatusCompleted && p.Task.CustomerReviewStatus == nil {
			completed[p.TaskID] = true
		} else if p.Status != StatusError && !completed[p.TaskID] {
			w.WriteHeader(http.StatusInternalServerError) // "task not found"
		}
	}))
	defer fragile.Close()
	// Slow (past a fifth of the timeout), with 750 ms to spare before a
	// loaded machine makes it a timeout.
	results, err = Check(t.Context(), fragile.URL, CheckOptions{AuthKey: "k", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	v = verdicts(results)
	for name, want := range map[string]string{
		"completed callback accepted":           CheckPass,
		"audit before its completion accepted":  CheckFail,
		"recall before its completion accepted": CheckFail,
		"unknown fields tolerated":              CheckFail,
		"missing auth key refused":              CheckWarn, // a 500: refused, but retried
		"wrong auth key refused":                CheckFail,
		"bad signature refused":                 CheckSkip,
		"answers quickly":                       CheckWarn, // 250 ms of a 1 s timeout
	} {
		if v[name] != want {
			t.Errorf("fragile handler, %s: got %q, want %q", name, v[name], want)
		}
	}
}

func TestCheckBadArguments(t *testing.T) {
	for _, tc := range []struct {
		url  string
		opts CheckOptions
		want error
	}{
		{"mailto:a@example.test", CheckOptions{}, ErrBadTarget},
		{"ftp://example.test", CheckOptions{}, ErrBadTarget},
		{"http://127.0.0.1:1/", CheckOptions{SigningSecret: "nope"}, ErrInvalid},
		{"http://127.0.0.1:1/", CheckOptions{AuthKey: "a\nb"}, ErrInvalid},
		{"http://127.0.0.1:1/", CheckOptions{Timeout: -1}, ErrInvalid},
		{"http://127.0.0.1:1/", CheckOptions{Type: "video"}, ErrUnknownType},
	} {
		if _, err := Check(t.Context(), tc.url, tc.opts); !errors.Is(err, tc.want) {
			t.Errorf("Check(%q, %+v): got %v, want %v", tc.url, tc.opts, err, tc.want)
		}
	}
	// A handler that is not there fails every check that sends, and is not
	// an error of Check.
	results, err := Check(t.Context(), "http://127.0.0.1:1/", CheckOptions{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if v := verdicts(results); v["completed callback accepted"] != CheckFail {
		t.Errorf("no handler: got %v", v)
	}
}
