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

// TestCheckCommand: callbin check exits 0 when every check passes (or is
// skipped), 1 when one fails, 2 on bad arguments; --json prints the same
// results as JSON.
func TestCheckCommand(t *testing.T) {
	acceptAll := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer acceptAll.Close()
	var stdout, stderr bytes.Buffer
	if code := check(context.Background(), []string{acceptAll.URL}, &stdout, &stderr); code != 0 {
		t.Fatalf("accept-all without keys: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "9 passed, 0 failed, 0 warnings, 3 skipped") {
		t.Errorf("summary: %s", stdout.String())
	}
	stdout.Reset()
	if code := check(context.Background(), []string{acceptAll.URL, "--auth-key", "k", "--json"}, &stdout, &stderr); code != 1 {
		t.Fatalf("accept-all with a key: exit %d, want 1", code)
	}
	var out struct {
		Failed  int `json:"failed"`
		Results []struct {
			Name, Verdict string
		} `json:"results"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || out.Failed != 2 || len(out.Results) != 12 {
		t.Fatalf("--json: %v, %+v", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "which URL"},
		{[]string{acceptAll.URL, "extra"}, `unexpected argument "extra"`},
		{[]string{"mailto:a@example.test"}, "e-mail targets"},
		{[]string{acceptAll.URL, "--nope"}, "-nope"},
	} {
		stderr.Reset()
		if code := check(context.Background(), tc.args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
