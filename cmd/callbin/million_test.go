package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callbin/callbin/inbox"
	"github.com/callbin/callbin/inbox/inboxtest"
)

// TestMillionCaptures measures, with a million captures stored, how long the
// built binary takes to list a bin's newest 50 and how much memory it holds
// while doing so. It takes a minute or two, so it runs only when asked:
//
//	CALLBIN_MILLION=1 go test ./cmd/callbin -run MillionCaptures -v
//
// CALLBIN_MILLION may give another count.
func TestMillionCaptures(t *testing.T) {
	total, _ := strconv.Atoi(os.Getenv("CALLBIN_MILLION"))
	if total <= 0 {
		t.Skip("set CALLBIN_MILLION=1 (a million) or a count to run it")
	}
	if total == 1 {
		total = 1_000_000
	}
	const bins = 10
	data := t.TempDir()
	start := time.Now()
	s := &inbox.Store{Path: filepath.Join(data, "inbox.db"), MaxBatch: 4096}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	inboxtest.Seed(t, s, total, bins)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("stored %d captures in %s", total, time.Since(start).Round(time.Second))

	p := MustStart(t, "-http", "127.0.0.1:0", "-smtp", "127.0.0.1:0", "-data", data)
	client := &http.Client{}
	var lats []time.Duration
	for i := 0; i < 500; i++ {
		t0 := time.Now()
		resp, err := client.Get(fmt.Sprintf("%s/api/v1/bins/bin%d/captures?limit=50", p.URL, i%bins))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		lats = append(lats, time.Since(t0))
		if resp.StatusCode != 200 || strings.Count(string(b), `"id":`) != 50 {
			t.Fatalf("got %d with %d items", resp.StatusCode, strings.Count(string(b), `"id":`))
		}
	}
	slices.Sort(lats)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var rss, hwm string
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rss = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			hwm = strings.TrimSpace(v)
		}
	}
	t.Logf("GET newest 50 of %d captures (HTTP, end to end): p50 %s, p99 %s, max %s; RSS %s (peak %s)",
		total/bins, lats[len(lats)/2], lats[len(lats)*99/100], lats[len(lats)-1], rss, hwm)
	if p99 := lats[len(lats)*99/100]; p99 > 5*time.Millisecond {
		t.Errorf("p99 %s, want at most 5ms", p99)
	}
	var kb int
	fmt.Sscan(rss, &kb)
	if kb > 150*1024 {
		t.Errorf("RSS %s, want under 150 MB", rss)
	}
}
