package sender

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestCloseInterruptsAndResumes: Close with a short deadline cancels an
// attempt in flight; the next Open resumes the delivery at once, and the
// interrupted attempt counts.
func TestCloseInterruptsAndResumes(t *testing.T) {
	hang := make(chan struct{})
	rc := MustReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select {
			case <-r.Context().Done():
			case <-hang:
			}
			return
		}
	})
	defer close(hang)
	path := filepath.Join(t.TempDir(), "sender.db")
	open := func() (*Engine, *eventLog) {
		log := newEventLog()
		e := &Engine{Path: path, Events: log, CallbackTimeout: 5 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if err := e.Open(); err != nil {
			t.Fatal(err)
		}
		return e, log
	}
	e, _ := open()
	task, err := e.CreateTask(t.Context(), "generic", []byte(`{"callback_url":"`+rc.URL+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CompleteTask(t.Context(), task.TaskID, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	rc.waitRequests(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: got %v, want the deadline error for the interrupted attempt", err)
	}
	if _, err := e.CreateTask(t.Context(), "generic", []byte(`{}`)); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("CreateTask after Close: got %v, want ErrNotOpen", err)
	}

	e2, log := open()
	defer e2.Close(context.Background())
	if !log.decided(t, task.TaskID) {
		t.Fatal("after reopen: got callback failure, want success")
	}
	ds, err := e2.Deliveries(t.Context(), task.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	atts := ds[0].Attempts
	if len(atts) != 2 || atts[0].ErrorClass == nil || *atts[0].ErrorClass != ClassInterrupt || atts[1].Status == nil || *atts[1].Status != 200 {
		t.Fatalf("attempts: got %d (first class %v), want 2: interrupted then 200", len(atts), atts[0].ErrorClass)
	}
	if gap := atts[1].At.Sub(atts[0].At); gap > 5*time.Second {
		t.Fatalf("resume: got the second attempt %s after the first, want it at once", gap)
	}
}
