package sender

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// TestCompleteFromCreatedCopy checks CompleteTask's use of the copy of a
// task kept from its creation: the callback it sends carries the task as
// stored, and a task changed since its creation (canceled; auto-completed
// and recalled) is completed as it is found, not as it was created.
func TestCompleteFromCreatedCopy(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	e, _ := MustEngine(t, func(e *Engine) { e.Clock = clock; e.AutoComplete = time.Hour })
	api := MustAPI(t, e)
	rc := MustReceiver(t, nil)
	create := func() string {
		body, _ := json.Marshal(categorization(rc.URL))
		task, err := e.CreateTask(ctx, TypeCategorization, body)
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		return task.TaskID
	}
	payloadTask := func(r received) map[string]any {
		var p struct {
			Task map[string]any `json:"task"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatalf("callback body %q: %v", r.Body, err)
		}
		return p.Task
	}

	t.Run("as created", func(t *testing.T) {
		id := create()
		done, err := e.CompleteTask(ctx, id, json.RawMessage(`{"category":"red"}`))
		if err != nil {
			t.Fatalf("complete: %v", err)
		}
		got := payloadTask(rc.waitRequests(t, 1)[0])
		want := mustCall(t, "GET", api.URL+"/v1/task/"+id, nil)
		for _, k := range []string{"callback_succeeded", "callback_succeeded_at", "updated_at"} {
			delete(got, k) // decided after the callback was sent
			delete(want, k)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("callback task: got %v, want the stored task %v", got, want)
		}
		if done.Status != StatusCompleted || string(done.Response) != `{"category":"red"}` {
			t.Fatalf("completed task: got status %s response %s, want completed {\"category\":\"red\"}", done.Status, done.Response)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		id := create()
		if _, err := e.CancelTask(ctx, id); err != nil {
			t.Fatalf("cancel: %v", err)
		}
		if _, err := e.CompleteTask(ctx, id, json.RawMessage(`{"category":"red"}`)); !errors.Is(err, ErrState) {
			t.Fatalf("complete a canceled task: got %v, want ErrState", err)
		}
	})

	t.Run("auto-completed and recalled", func(t *testing.T) {
		before := len(rc.requests())
		id := create()
		clock.Set(clock.Now().Add(2 * time.Hour)) // auto-completion, not through CompleteTask
		rc.waitRequests(t, before+1)
		if _, err := e.RecallTask(ctx, id); err != nil {
			t.Fatalf("recall: %v", err)
		}
		rc.waitRequests(t, before+2)
		done, err := e.CompleteTask(ctx, id, json.RawMessage(`{"category":"green"}`))
		if err != nil {
			t.Fatalf("complete after recall: %v", err)
		}
		if len(done.PriorResponses) != 1 {
			t.Fatalf("completed task: got prior_responses %s, want the auto-completed response", done.PriorResponses)
		}
		got := payloadTask(rc.waitRequests(t, before+3)[before+2])
		if prior, _ := got["prior_responses"].([]any); got["status"] != StatusCompleted || len(prior) != 1 {
			t.Fatalf("callback task: got status %v prior_responses %v, want completed with 1 prior response",
				got["status"], got["prior_responses"])
		}
	})
}

// TestCallbackSucceededFromLatestDelivery checks that callback_succeeded
// and callback_succeeded_at are those of the task's latest delivery, also
// after changes that queue no callback (the profile's default target was
// cleared), and that updated_at includes the decision.
func TestCallbackSucceededFromLatestDelivery(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	e, log := MustEngine(t, func(e *Engine) { e.Clock = clock })
	rc := MustReceiver(t, nil)
	set := func(url string) {
		if _, err := e.SetProfile(ctx, ProfileUpdate{DefaultCallbackURL: &url}); err != nil {
			t.Fatalf("set profile: %v", err)
		}
	}
	set(rc.URL)
	body := categorization("")
	delete(body, "callback_url")
	raw, _ := json.Marshal(body)
	task, err := e.CreateTask(ctx, TypeCategorization, raw)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	clock.Set(clock.Now().Add(time.Minute))
	if _, err := e.CompleteTask(ctx, task.TaskID, json.RawMessage(`{"category":"red"}`)); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if !log.decided(t, task.TaskID) {
		t.Fatal("callback: got failure, want success")
	}
	decided, err := e.GetTask(ctx, task.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if decided.CallbackSucceeded == nil || !*decided.CallbackSucceeded || decided.CallbackSucceededAt == nil ||
		!decided.UpdatedAt.Equal(*decided.CallbackSucceededAt) {
		t.Fatalf("after the callback: got callback_succeeded %v at %v, updated_at %v, want true at updated_at",
			decided.CallbackSucceeded, decided.CallbackSucceededAt, decided.UpdatedAt)
	}

	set("")
	clock.Set(clock.Now().Add(time.Minute))
	recalled, err := e.RecallTask(ctx, task.TaskID)
	if err != nil {
		t.Fatalf("recall: %v", err)
	}
	done, err := e.CompleteTask(ctx, task.TaskID, json.RawMessage(`{"category":"green"}`))
	if err != nil {
		t.Fatalf("complete again: %v", err)
	}
	got, err := e.GetTask(ctx, task.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	for name, tk := range map[string]*Task{"recall": recalled, "complete": done, "read": got} {
		if tk.CallbackSucceeded == nil || !*tk.CallbackSucceeded || tk.CallbackSucceededAt == nil ||
			!tk.CallbackSucceededAt.Equal(*decided.CallbackSucceededAt) {
			t.Fatalf("%s without a callback: got callback_succeeded %v at %v, want true at %v (the latest delivery's)",
				name, tk.CallbackSucceeded, tk.CallbackSucceededAt, decided.CallbackSucceededAt)
		}
	}
	if !got.UpdatedAt.Equal(clock.Now()) {
		t.Fatalf("updated_at: got %v, want the last change at %v", got.UpdatedAt, clock.Now())
	}
}
