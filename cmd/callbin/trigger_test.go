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
	for _, tt := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{}, "which event"},
		{[]string{"completed"}, "--to is required"},
		{[]string{"nope", "--to", ok.URL}, "nope"},
		{[]string{"completed", "--to", "ftp://x"}, "ftp"},
		{[]string{"completed", "--bad"}, "-bad"},
		{[]string{"completed", "--to", ok.URL, "extra"}, `unexpected argument "extra"`},
		{[]string{"completed", "--to", "x@example.test", "--smtp-relay", "bogus"}, "bogus"},
		{[]string{"completed", "--to", "x@example.test", "--smtp-relay", "127.0.0.1:99999"}, "99999"},
	} {
		stderr.Reset()
		if code := trigger(context.Background(), tt.args, nil, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("%v: got exit %d, %q; want 2 and %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}
