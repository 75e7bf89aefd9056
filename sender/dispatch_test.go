package sender

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWorkersBoundConcurrency: deliveries queued while every worker is busy
// wait (pending) and are all sent once workers free; the receiver never
// sees more requests at once than there are workers, whether an attempt was
// handed straight to a worker or claimed by the scheduler.
func TestWorkersBoundConcurrency(t *testing.T) {
	const workers, tasks = 2, 12
	var now, peak atomic.Int32
	release := make(chan struct{})
	rc := MustReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		cur := now.Add(1)
		defer now.Add(-1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		select {
		case <-release:
		case <-time.After(testWait):
		}
	})
	e, log := MustEngine(t, func(e *Engine) { e.Workers = workers })
	var ids []string
	for i := range tasks {
		task, err := e.CreateTask(t.Context(), "generic", []byte(`{"callback_url":"`+rc.URL+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.CompleteTask(t.Context(), task.TaskID, []byte(fmt.Sprintf(`{"i":%d}`, i))); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.TaskID)
	}
	rc.waitRequests(t, workers)
	ds, err := e.Deliveries(t.Context(), ids[tasks-1])
	if err != nil {
		t.Fatal(err)
	}
	if got := ds[0].State; got != "pending" {
		t.Fatalf("last delivery while %d workers are busy: got state %q, want pending", workers, got)
	}
	close(release)
	for _, id := range ids {
		if !log.decided(t, id) {
			t.Fatalf("task %s: got callback failure, want success", id)
		}
	}
	if got := len(rc.requests()); got != tasks {
		t.Fatalf("receiver: got %d requests, want %d", got, tasks)
	}
	if p := peak.Load(); p > workers {
		t.Fatalf("receiver: got %d requests at once, want at most %d (Workers)", p, workers)
	}
	if n := e.inflight.Load(); n != 0 {
		t.Fatalf("worker slots taken after every delivery ended: got %d, want 0", n)
	}
}

// TestInFlightAttemptListed: an attempt being sent shows in the callbacks
// log as in flight (from its delivery row), with its number and times.
func TestInFlightAttemptListed(t *testing.T) {
	release := make(chan struct{})
	rc := MustReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(testWait):
		}
	})
	e, log := MustEngine(t, nil)
	task, err := e.CreateTask(t.Context(), "generic", []byte(`{"callback_url":"`+rc.URL+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CompleteTask(t.Context(), task.TaskID, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	rc.waitRequests(t, 1)
	ds, err := e.Deliveries(t.Context(), task.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].State != "in_flight" || len(ds[0].Attempts) != 1 {
		t.Fatalf("during the attempt: got %+v, want one in_flight delivery with one attempt", ds)
	}
	a := ds[0].Attempts[0]
	if !a.InFlight || a.N != 1 || a.At.IsZero() || a.DueAt.IsZero() || a.URL != rc.URL || a.Status != nil {
		t.Fatalf("attempt in flight: got %+v, want n 1 in flight at %s with times and no status", a, rc.URL)
	}
	close(release)
	if !log.decided(t, task.TaskID) {
		t.Fatal("got callback failure, want success")
	}
	ds, err = e.Deliveries(t.Context(), task.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds[0].Attempts) != 1 || ds[0].Attempts[0].InFlight || ds[0].Attempts[0].Status == nil || *ds[0].Attempts[0].Status != 200 {
		t.Fatalf("after the attempt: got %+v, want one finished attempt with status 200", ds[0].Attempts)
	}
}

// TestRecoverOldInFlightRow: a database written before attempt starts moved
// to the delivery row has an unfinished attempts row instead; Open finishes
// that row as interrupted (no second row), and the delivery resumes.
func TestRecoverOldInFlightRow(t *testing.T) {
	rc := MustReceiver(t, nil)
	path := filepath.Join(t.TempDir(), "sender.db")
	open := func() (*Engine, *eventLog) {
		log := newEventLog()
		e := &Engine{Path: path, Events: log, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if err := e.Open(); err != nil {
			t.Fatal(err)
		}
		return e, log
	}
	e, _ := open()
	task, err := e.CreateTask(t.Context(), "generic", []byte(`{}`)) // no callback yet
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+pragmas)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	if _, err := db.Exec(`INSERT INTO deliveries (task_id, event, target, webhook_id, payload, state, attempts,
		created_at, updated_at) VALUES (?, 'completed', ?, 'msg_old', '{}', 'in_flight', 1, ?, ?)`,
		task.TaskID, rc.URL, now, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO attempts (delivery_id, n, due_at, started_at, url)
		VALUES ((SELECT MAX(id) FROM deliveries), 1, ?, ?, ?)`, now, now, rc.URL); err != nil {
		t.Fatal(err)
	}
	db.Close()

	e, log := open()
	defer e.Close(context.Background())
	if !log.decided(t, task.TaskID) {
		t.Fatal("after reopen: got callback failure, want success")
	}
	ds, err := e.Deliveries(t.Context(), task.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	atts := ds[0].Attempts
	if len(atts) != 2 || atts[0].ErrorClass == nil || *atts[0].ErrorClass != ClassInterrupt || atts[0].At.UnixNano() != now ||
		atts[1].Status == nil || *atts[1].Status != 200 {
		t.Fatalf("attempts: got %d (%+v), want 2: the old row interrupted (start kept), then 200", len(atts), atts)
	}
}

// TestConcurrentCompletes: many callers completing tasks at once share
// write transactions; every task gets exactly one successful callback.
func TestConcurrentCompletes(t *testing.T) {
	const callers, each = 16, 10
	rc := MustReceiver(t, nil)
	e, log := MustEngine(t, func(e *Engine) { e.Workers = 4 })
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				task, err := e.CreateTask(context.Background(), "generic", []byte(`{"callback_url":"`+rc.URL+`"}`))
				if err != nil {
					errs <- err
					return
				}
				if _, err := e.CompleteTask(context.Background(), task.TaskID, []byte(`{"ok":true}`)); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ids = append(ids, task.TaskID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !log.decided(t, id) {
			t.Fatalf("task %s: got callback failure, want success", id)
		}
	}
	if got, want := len(rc.requests()), callers*each; got != want {
		t.Fatalf("receiver: got %d requests, want %d", got, want)
	}
	seen := map[string]bool{}
	for _, r := range rc.requests() {
		id := r.Header.Get(HeaderWebhookID)
		if seen[id] {
			t.Fatalf("webhook-id %s: got it twice, want each delivery sent once", id)
		}
		seen[id] = true
	}
}
