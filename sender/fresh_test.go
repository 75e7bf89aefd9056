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
