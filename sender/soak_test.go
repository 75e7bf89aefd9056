package sender

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSoakDeadReceiver queues 100,000 deliveries for a receiver that
// refuses connections, waits for every first attempt, then measures the
// process's memory and its CPU time over a quiet window (every retry is an
// hour away). Opt-in: CALLBIN_SOAK=1 (CALLBIN_SOAK_TASKS, CALLBIN_SOAK_QUIET
// change the count and the window, default 100000 and 60s).
func TestSoakDeadReceiver(t *testing.T) {
	if os.Getenv("CALLBIN_SOAK") == "" {
		t.Skip("set CALLBIN_SOAK=1 to run (takes minutes)")
	}
	tasks := 100000
	if s := os.Getenv("CALLBIN_SOAK_TASKS"); s != "" {
		tasks, _ = strconv.Atoi(s)
	}
	quiet := time.Minute
	if s := os.Getenv("CALLBIN_SOAK_QUIET"); s != "" {
		quiet, _ = time.ParseDuration(s)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/hook"
	l.Close()

	e := &Engine{Path: filepath.Join(t.TempDir(), "sender.db"), CallbackTimeout: time.Second,
		Policy: Policy{Name: "hourly", Delays: []time.Duration{time.Hour, time.Hour}},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := e.Open(); err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	body := []byte(`{"callback_url":"` + dead + `","attachment_type":"text","attachment":"x","categories":["a","b"]}`)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(tasks) {
				task, err := e.CreateTask(t.Context(), "categorization", body)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := e.CompleteTask(t.Context(), task.TaskID, []byte(`{"category":"a"}`)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	queued := time.Since(start)
	deadline := time.Now().Add(5 * time.Minute)
	var done int
	for time.Now().Before(deadline) {
		if err := e.rdb.QueryRow(`SELECT COUNT(*) FROM attempts WHERE finished = 1`).Scan(&done); err != nil {
			t.Fatal(err)
		}
		if done >= tasks {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if done < tasks {
		t.Fatalf("first attempts: got %d finished, want %d", done, tasks)
	}
	firstAttempts := time.Since(start)
	var pending int
	e.rdb.QueryRow(`SELECT COUNT(*) FROM deliveries WHERE state = 'pending'`).Scan(&pending)
	if pending != tasks {
		t.Fatalf("pending deliveries: got %d, want %d", pending, tasks)
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	wakeups := e.wakeups.Load()
	c0 := cpu()
	time.Sleep(quiet)
	idleCPU := cpu() - c0
	rss, hwm := procStatus(t, "VmRSS"), procStatus(t, "VmHWM")
	t.Logf("%d tasks created+completed in %s; all first attempts done after %s", tasks, queued.Round(time.Millisecond), firstAttempts.Round(time.Millisecond))
	t.Logf("quiet %s with %d deliveries pending: CPU %s, scheduler turns %d; RSS %s, peak RSS %s",
		quiet, pending, idleCPU, e.wakeups.Load()-wakeups, rss, hwm)
	if idleCPU > quiet/100 {
		t.Fatalf("idle CPU: got %s over %s, want under 1%%", idleCPU, quiet)
	}
}

func procStatus(t *testing.T, key string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
