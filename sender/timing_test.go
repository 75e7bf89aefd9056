package sender

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestDueTimePrecision runs retries on the wall clock (time scale 1) and
// checks how late attempts start against their due time.
func TestDueTimePrecision(t *testing.T) {
	e, log := MustEngine(t, func(e *Engine) {
		e.Policy = Policy{Name: "fast", Delays: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, Jitter: 0.5}
	})
	rc := MustReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	const tasks = 40
	var ids []string
	for range tasks {
		task, err := e.CreateTask(t.Context(), "categorization", []byte(`{"callback_url":"`+rc.URL+`","attachment_type":"text","attachment":"x","categories":["a"]}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.CompleteTask(t.Context(), task.TaskID, []byte(`{"category":"a"}`)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, task.TaskID)
	}
	var late []time.Duration
	for _, id := range ids {
		if log.decided(t, id) {
			t.Fatalf("task %s: got callback success from a failing receiver", id)
		}
		ds, err := e.Deliveries(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds[0].Attempts) != 3 {
			t.Fatalf("task %s: got %d attempts, want 3", id, len(ds[0].Attempts))
		}
		for _, a := range ds[0].Attempts[1:] { // retries: due times set by the policy
			late = append(late, a.At.Sub(a.DueAt))
		}
	}
	slices.Sort(late)
	q := func(p float64) time.Duration { return late[int(p*float64(len(late)-1))] }
	t.Logf("retry start minus due time over %d retries: min %s p50 %s p90 %s p99 %s max %s",
		len(late), late[0], q(0.5), q(0.9), q(0.99), late[len(late)-1])
	if late[0] < 0 {
		t.Fatalf("earliest retry: got %s before its due time, want never early", -late[0])
	}
	// The race detector slows everything about tenfold.
	bound := 50 * time.Millisecond
	if raceEnabled {
		bound = 500 * time.Millisecond
	}
	if q(0.99) > bound {
		t.Fatalf("p99 lateness: got %s, want at most %s", q(0.99), bound)
	}
}

// TestIdleBetweenDueTimes: with only a far-off retry queued, the scheduler
// sleeps (no polling turns).
func TestIdleBetweenDueTimes(t *testing.T) {
	clock := newFakeClock()
	e, log := MustEngine(t, func(e *Engine) { e.Clock = clock })
	rc := MustReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	task, err := e.CreateTask(t.Context(), "generic", []byte(`{"callback_url":"`+rc.URL+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CompleteTask(t.Context(), task.TaskID, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	ev := log.attempt(t, task.TaskID, 1)
	// The scheduler's last turn ends with the timer for the retry: once it
	// is armed, no turn is under way.
	waitTrue(t, "the scheduler parked on the retry's timer", func() bool { return clock.armed(*ev.NextAttemptAt) })
	before := e.wakeups.Load()
	time.Sleep(300 * time.Millisecond)
	if d := e.wakeups.Load() - before; d != 0 {
		t.Fatalf("scheduler turns while idle: got %d in 300ms, want 0", d)
	}
	clock.Set(*ev.NextAttemptAt)
	log.attempt(t, task.TaskID, 2)
}

// TestRetryCountsFromAttemptEnd: the retry's delay runs from the end of
// the failed attempt, not from when its result is committed. The writer is
// held busy for 1 s of real time (an hour at 3600x) as the attempt ends;
// the retry must still be due the policy's 13 s after it (give or take the
// time, scaled, between the end the log shows, start plus latency, and the
// worker's reading of the clock: a few milliseconds, which are seconds at
// 3600x, and more on a loaded machine).
func TestRetryCountsFromAttemptEnd(t *testing.T) {
	clock, err := NewScaledClock(3600)
	if err != nil {
		t.Fatal(err)
	}
	var e *Engine
	e, _ = MustEngine(t, func(en *Engine) {
		en.Clock = clock
		en.Policy = Policy{Name: "one", Delays: []time.Duration{13 * time.Second}}
	})
	held := make(chan struct{})
	rc := MustReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			go e.write(func(querier) error {
				close(held)
				time.Sleep(time.Second) // an hour of clock time
				return nil
			})
			<-held
		}
		w.WriteHeader(500)
	})
	task, err := e.CreateTask(t.Context(), "generic", []byte(`{"callback_url":"`+rc.URL+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CompleteTask(t.Context(), task.TaskID, []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	var ds []Delivery
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ds, err = e.Deliveries(t.Context(), task.TaskID); err != nil {
			t.Fatal(err)
		}
		if len(ds[0].Attempts) == 2 && !ds[0].Attempts[1].InFlight {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no second attempt: %+v", ds)
		}
	}
	first, second := ds[0].Attempts[0], ds[0].Attempts[1]
	// The first attempt's end on the sender's clock: its start plus its
	// (real) latency, scaled.
	ended := first.At.Add(time.Duration(*first.LatencyMS * float64(time.Millisecond) * 3600))
	// What lies between the attempt's recorded start and its send (the
	// completion's commit, the hand-off to a worker) is not in its latency,
	// and each real millisecond of it is 3.6 s here: the bound leaves about
	// 330 ms of it, still far below the hour a retry counted from the
	// commit would be late.
	if gap := second.DueAt.Sub(ended); gap < 12*time.Second || gap > 20*time.Minute {
		t.Fatalf("retry due %s after the attempt ended, want 13s (the writer was busy for an hour of clock time)", gap)
	}
}
