package sender

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashPolicy is the policy of the crash tests: "short" allows 3 attempts.
func crashPolicy(name string) Policy {
	if name == "short" {
		return Policy{Name: "short", Delays: []time.Duration{time.Second, time.Second}}
	}
	return DefaultPolicy()
}

// TestCrashChild is the process that TestCrashResume kills with SIGKILL. It
// runs only when that test starts it.
func TestCrashChild(t *testing.T) {
	dbPath := os.Getenv("CALLBIN_CRASH_DB")
	if dbPath == "" {
		t.Skip("run by TestCrashResume")
	}
	clock, _ := NewScaledClock(1e4)
	e := &Engine{Path: dbPath, Clock: clock, Policy: crashPolicy(os.Getenv("CALLBIN_CRASH_POLICY")),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := e.Open(); err != nil {
		t.Fatal(err)
	}
	task, err := e.CreateTask(t.Context(), "categorization", []byte(fmt.Sprintf(
		`{"callback_url": %q, "attachment_type": "text", "attachment": "x", "categories": ["a", "b"]}`, os.Getenv("CALLBIN_CRASH_URL"))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CompleteTask(t.Context(), task.TaskID, []byte(`{"category": "a"}`)); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("TASK %s\n", task.TaskID)
	time.Sleep(testWait) // killed long before this
}

// TestCrashResume kills a process with SIGKILL while an attempt is in
// flight, then reopens its database: the interrupted attempt counts, the
// delivery resumes, and the policy's limit holds.
func TestCrashResume(t *testing.T) {
	if os.Getenv("CALLBIN_CRASH_DB") != "" {
		t.Skip("child")
	}
	tests := []struct {
		policy   string
		ok       bool
		attempts int
	}{
		{"scale", true, 4}, // 500, 500, killed mid-attempt, 200
		{"short", false, 3},
	}
	for _, tc := range tests {
		t.Run(tc.policy, func(t *testing.T) {
			inFlight := make(chan struct{})
			release := make(chan struct{})
			rc := MustReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
				switch {
				case n <= 2:
					w.WriteHeader(http.StatusInternalServerError)
				case n == 3:
					close(inFlight)
					select {
					case <-release:
					case <-time.After(testWait):
					}
					w.WriteHeader(http.StatusInternalServerError)
				}
			})
			defer close(release)
			dbPath := filepath.Join(t.TempDir(), "sender.db")
			ctx, cancel := context.WithTimeout(t.Context(), 2*testWait)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "CALLBIN_CRASH_DB="+dbPath, "CALLBIN_CRASH_URL="+rc.URL,
				"CALLBIN_CRASH_POLICY="+tc.policy)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			var taskID string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if id, ok := strings.CutPrefix(sc.Text(), "TASK "); ok {
					taskID = id
					break
				}
			}
			if taskID == "" {
				t.Fatal("child: got no task id")
			}
			select {
			case <-inFlight:
			case <-time.After(testWait):
				t.Fatalf("receiver: attempt 3 never arrived (got %d requests)", len(rc.requests()))
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err == nil {
				t.Fatal("child: got a clean exit, want killed")
			}

			clock, _ := NewScaledClock(1e4)
			log := newEventLog()
			e := &Engine{Path: dbPath, Clock: clock, Policy: crashPolicy(tc.policy), Events: log,
				Logger: slog.New(slog.NewTextHandler(testLogOut(), nil))}
			if err := e.Open(); err != nil {
				t.Fatal(err)
			}
			defer e.Close(context.Background())
			if got := log.decided(t, taskID); got != tc.ok {
				t.Fatalf("callback_succeeded after restart: got %v, want %v", got, tc.ok)
			}
			ds, err := e.Deliveries(t.Context(), taskID)
			if err != nil {
				t.Fatal(err)
			}
			atts := ds[0].Attempts
			if len(atts) != tc.attempts {
				t.Fatalf("attempts: got %d, want %d", len(atts), tc.attempts)
			}
			if atts[2].ErrorClass == nil || *atts[2].ErrorClass != ClassInterrupt || atts[2].InFlight {
				t.Fatalf("attempt 3: got class %v in_flight %v, want %q and finished", atts[2].ErrorClass, atts[2].InFlight, ClassInterrupt)
			}
			if n := len(rc.requests()); n != tc.attempts {
				t.Fatalf("receiver: got %d requests, want %d (no attempt beyond the policy)", n, tc.attempts)
			}
			reqs := rc.requests()
			for i, r := range reqs {
				if r.Header.Get("webhook-id") != reqs[0].Header.Get("webhook-id") {
					t.Fatalf("request %d: got webhook-id %q, want %q", i+1, r.Header.Get("webhook-id"), reqs[0].Header.Get("webhook-id"))
				}
			}
		})
	}
}
