package sender

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// TestLadderAllFail runs the whole default ladder (1 attempt + 20 retries)
// against a receiver that always fails, on a fake clock moved to each due
// time, and checks every delay against the written-down schedule.
func TestLadderAllFail(t *testing.T) {
	clock := newFakeClock()
	e, log := MustEngine(t, func(e *Engine) { e.Clock = clock })
	api := MustAPI(t, e)
	rc := MustReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	})
	secret := mustCall(t, "PUT", api.URL+"/api/v1/profile", map[string]any{"signing_secret": "generate"})["signing_secret"].(string)

	task := mustCall(t, "POST", api.URL+"/v1/task/categorization", categorization(rc.URL))
	id := task["task_id"].(string)
	mustCall(t, "POST", api.URL+"/v1/task/"+id+"/complete", map[string]any{"response": map[string]any{"category": "red"}})

	policy := DefaultPolicy()
	first := log.attempt(t, id, 1)
	prev := first
	for n := 2; n <= 21; n++ {
		if prev.State != "pending" || prev.NextAttemptAt == nil {
			t.Fatalf("after attempt %d: got state %q next %v, want pending with a next attempt", n-1, prev.State, prev.NextAttemptAt)
		}
		gap := prev.NextAttemptAt.Sub(prev.At)
		nominal := policy.Delays[n-2]
		lo, hi := time.Duration(float64(nominal)*(1-policy.Jitter)), time.Duration(float64(nominal)*(1+policy.Jitter))
		if gap < lo || gap > hi {
			t.Fatalf("retry %d: got delay %s, want %s ±10%% [%s, %s]", n-1, gap, nominal, lo, hi)
		}
		clock.Set(*prev.NextAttemptAt)
		prev = log.attempt(t, id, n)
		if prev.StatusCode != 500 || prev.ErrorClass != ClassHTTPStatus {
			t.Fatalf("attempt %d: got status %d class %q, want 500 %q", n, prev.StatusCode, prev.ErrorClass, ClassHTTPStatus)
		}
	}
	if prev.State != "failed" || prev.NextAttemptAt != nil {
		t.Fatalf("attempt 21: got state %q next %v, want failed and no next attempt", prev.State, prev.NextAttemptAt)
	}
	if ok := log.decided(t, id); ok {
		t.Fatalf("callback_succeeded: got true, want false")
	}
	total := prev.At.Sub(first.At)
	if total < 21*time.Hour || total > 27*time.Hour {
		t.Fatalf("20th retry: got %s after the first attempt, want about 24h", total)
	}

	got := mustCall(t, "GET", api.URL+"/v1/task/"+id, nil)
	if got["callback_succeeded"] != false {
		t.Fatalf("task callback_succeeded: got %v, want false", got["callback_succeeded"])
	}
	if got["callback_succeeded_at"] != nil {
		t.Fatalf("task callback_succeeded_at: got %v, want null", got["callback_succeeded_at"])
	}
	cbs := mustCall(t, "GET", api.URL+"/v1/task/"+id+"/callbacks", nil)["items"].([]any)
	if len(cbs) != 1 {
		t.Fatalf("deliveries: got %d, want 1", len(cbs))
	}
	d := cbs[0].(map[string]any)
	if att := d["attempts"].([]any); len(att) != 21 || d["state"] != "failed" || d["next_attempt_at"] != nil {
		t.Fatalf("delivery: got %d attempts, state %v, next %v; want 21, failed, null", len(att), d["state"], d["next_attempt_at"])
	}

	// Every request: same webhook-id and Idempotency-Key, the auth header,
	// and a signature that the Standard Webhooks reference library accepts.
	reqs := rc.waitRequests(t, 21)
	if len(reqs) != 21 {
		t.Fatalf("receiver: got %d requests, want 21", len(reqs))
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	key := e.Profile().CallbackAuthKey
	msgID := reqs[0].Header.Get("webhook-id")
	for i, r := range reqs {
		if got := r.Header.Get("webhook-id"); got != msgID || got == "" {
			t.Fatalf("request %d: got webhook-id %q, want %q", i+1, got, msgID)
		}
		if got := r.Header.Get("Idempotency-Key"); got != msgID {
			t.Fatalf("request %d: got Idempotency-Key %q, want %q", i+1, got, msgID)
		}
		if got := r.Header.Get("scale-callback-auth"); got != key {
			t.Fatalf("request %d: got scale-callback-auth %q, want %q", i+1, got, key)
		}
		if err := wh.Verify(r.Body, r.Header); err != nil {
			t.Fatalf("request %d: reference library: %v", i+1, err)
		}
		var p Payload
		if err := json.Unmarshal(r.Body, &p); err != nil || p.TaskID != id || p.Status != StatusCompleted || p.Task == nil || p.Task.TaskID != id {
			t.Fatalf("request %d: got payload %s (%v), want the completed task %s", i+1, r.Body, err, id)
		}
	}
}

// TestLadderRecovers: a receiver that fails 3 times then answers 200, on a
// scaled clock (1 real ms = 100 clock s).
func TestLadderRecovers(t *testing.T) {
	clock, err := NewScaledClock(1e5)
	if err != nil {
		t.Fatal(err)
	}
	e, log := MustEngine(t, func(e *Engine) { e.Clock = clock })
	api := MustAPI(t, e)
	rc := MustReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("thanks"))
	})
	id := mustCall(t, "POST", api.URL+"/v1/task/categorization", categorization(rc.URL))["task_id"].(string)
	mustCall(t, "POST", api.URL+"/v1/task/"+id+"/complete", map[string]any{"response": map[string]any{"category": "red"}})
	if ok := log.decided(t, id); !ok {
		t.Fatalf("callback_succeeded: got false, want true")
	}
	task := mustCall(t, "GET", api.URL+"/v1/task/"+id, nil)
	if task["callback_succeeded"] != true || task["callback_succeeded_at"] == nil {
		t.Fatalf("task: got callback_succeeded %v at %v, want true with a time", task["callback_succeeded"], task["callback_succeeded_at"])
	}
	d := mustCall(t, "GET", api.URL+"/v1/task/"+id+"/callbacks", nil)["items"].([]any)[0].(map[string]any)
	atts := d["attempts"].([]any)
	if len(atts) != 4 || d["state"] != "succeeded" {
		t.Fatalf("delivery: got %d attempts state %v, want 4 succeeded", len(atts), d["state"])
	}
	for i, a := range atts {
		a := a.(map[string]any)
		want := 503.0
		if i == 3 {
			want = 200
		}
		if a["status"] != want {
			t.Fatalf("attempt %d: got status %v, want %v", i+1, a["status"], want)
		}
	}
	if got := atts[3].(map[string]any)["reply_body"]; got != "thanks" {
		t.Fatalf("attempt 4 reply_body: got %q, want %q", got, "thanks")
	}
	if n := len(rc.requests()); n != 4 {
		t.Fatalf("receiver: got %d requests, want 4", n)
	}
}
