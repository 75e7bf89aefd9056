package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTrigger(t *testing.T) {
	var got struct {
		auth string
		body map[string]any
	}
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.auth = r.Header.Get("scale-callback-auth")
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &got.body)
		w.Header().Set("X-Seen", "yes")
		io.WriteString(w, "thanks")
	}))
	defer ok.Close()
	var stdout, stderr bytes.Buffer
	code := trigger(context.Background(), []string{"completed", "--to", ok.URL, "--auth-key", "k1"}, nil, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("got exit %d, stderr %s", code, stderr.String())
	}
	if got.auth != "k1" || got.body["status"] != "completed" || got.body["task_id"] == nil {
		t.Errorf("receiver saw auth %q body %v", got.auth, got.body)
	}
	for _, want := range []string{"accepted: 200", "X-Seen: yes", "thanks"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
	}))
	defer failing.Close()
	stdout.Reset()
	if code := trigger(context.Background(), []string{"recall", "--to", failing.URL}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("failing receiver: got exit %d, want 1", code)
	}
	if !strings.Contains(stdout.String(), "refused: 503") {
		t.Errorf("got %s", stdout.String())
	}
	for _, args := range [][]string{{}, {"completed"}, {"nope", "--to", ok.URL}, {"completed", "--to", "ftp://x"}, {"completed", "--bad"}} {
		stderr.Reset()
		if code := trigger(context.Background(), args, nil, io.Discard, &stderr); code != 2 {
			t.Errorf("%v: got exit %d, want 2", args, code)
		}
	}
}
